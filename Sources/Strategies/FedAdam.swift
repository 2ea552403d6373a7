import FedAvg
import FlowerCore

/// FedAdam: Reddi et al., "Adaptive Federated Optimization", ICLR 2021 (arXiv:2003.00295),
/// Algorithm 2 with Adam's second moment. Semantics and defaults of Flower's
/// flwr/server/strategy/fedadam.py: η = 0.1, β₁ = 0.9, β₂ = 0.99, τ = 1e-9, and Flower's
/// bias-corrected rate η·√(1 − β₂^(t+1))/(1 − β₁^(t+1)), which the paper does not have; we follow
/// Flower (see `fedOptStep`).
public struct FedAdam: FedAvgBased {
    public var base: FedAvg
    public var settings: FedOptSettings
    public var name: String { "FedAdam" }

    /// Flower's defaults.
    public static let defaults = FedOptSettings(eta: 0.1, beta1: 0.9, beta2: 0.99, tau: 1e-9)

    public init(base: FedAvg, settings: FedOptSettings = FedAdam.defaults) {
        self.base = base
        self.settings = settings
    }

    public func makeFitAggregator(_ context: FitRoundContext) -> any FitAggregator {
        settings.aggregator(.adam, context, base: base)
    }
}
