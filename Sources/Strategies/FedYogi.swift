import FedAvg
import FlowerCore

/// FedYogi: Reddi et al., "Adaptive Federated Optimization", ICLR 2021 (arXiv:2003.00295),
/// Algorithm 2 with Yogi's second moment v ← v − (1 − β₂)Δ²·sign(v − Δ²). Semantics and defaults
/// of Flower's flwr/server/strategy/fedyogi.py: η = 0.01, β₁ = 0.9, β₂ = 0.99, τ = 1e-3, no bias
/// correction. The paper starts v at v₋₁ ≥ τ²; Flower (and we) start it at 0.
public struct FedYogi: FedAvgBased {
    public var base: FedAvg
    public var settings: FedOptSettings
    public var name: String { "FedYogi" }

    /// Flower's defaults.
    public static let defaults = FedOptSettings(eta: 0.01, beta1: 0.9, beta2: 0.99, tau: 1e-3)

    public init(base: FedAvg, settings: FedOptSettings = FedYogi.defaults) {
        self.base = base
        self.settings = settings
    }

    public func makeFitAggregator(_ context: FitRoundContext) -> any FitAggregator {
        settings.aggregator(.yogi, context, base: base)
    }
}
