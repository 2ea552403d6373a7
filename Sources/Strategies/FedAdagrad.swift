import FedAvg
import FlowerCore

/// FedAdagrad: Reddi et al., "Adaptive Federated Optimization", ICLR 2021 (arXiv:2003.00295),
/// Algorithm 2 with v ← v + Δ². Semantics and defaults of Flower's
/// flwr/server/strategy/fedadagrad.py: η = 0.1, τ = 1e-9, and β₁ fixed at 0 (m = Δ, no momentum),
/// where the paper's Algorithm 2 keeps a β₁ momentum for all three. We default to Flower's β₁ = 0
/// and let `--beta-1` set the paper's momentum; β₂ is unused.
public struct FedAdagrad: FedAvgBased {
    public var base: FedAvg
    public var settings: FedOptSettings
    public var name: String { "FedAdagrad" }

    /// Flower's defaults.
    public static let defaults = FedOptSettings(eta: 0.1, beta1: 0, beta2: 0, tau: 1e-9)

    public init(base: FedAvg, settings: FedOptSettings = FedAdagrad.defaults) {
        self.base = base
        self.settings = settings
    }

    public func makeFitAggregator(_ context: FitRoundContext) -> any FitAggregator {
        settings.aggregator(.adagrad, context, base: base)
    }
}
