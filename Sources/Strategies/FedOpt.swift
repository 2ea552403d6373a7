import FedAvg
import FlowerCore

/// The FedOpt family's shared step (Reddi et al., "Adaptive Federated Optimization", ICLR 2021,
/// arXiv:2003.00295; Flower's flwr/server/strategy/fedopt.py): FedAvg's average, then an
/// adaptive server step (`fedOptStep`) with moments `m`, `v` carried in `StrategyState` (and the
/// checkpoint). FedAdam, FedYogi and FedAdagrad are thin strategies over it.
public struct FedOptSettings: Sendable, Equatable {
    /// η, the server learning rate (Flower's `eta`, `--server-learning-rate`).
    public var eta: Double
    /// β₁, the first-moment decay (`--beta-1`, alias `--server-momentum`).
    public var beta1: Double
    /// β₂, the second-moment decay (`--beta-2`).
    public var beta2: Double
    /// τ, the adaptivity floor (`--tau`).
    public var tau: Double

    public init(eta: Double, beta1: Double, beta2: Double, tau: Double) {
        self.eta = eta
        self.beta1 = beta1
        self.beta2 = beta2
        self.tau = tau
    }

    /// The aggregator for `context`: FedAvg's average, then the `variant` step.
    func aggregator(_ variant: FedOptVariant, _ context: FitRoundContext, base: FedAvg) -> any FitAggregator {
        let s = self
        return ServerStepAggregator(context, base: base) { ctx, avg in
            let r = fedOptStep(variant, round: ctx.round, global: ctx.parameters.values, average: avg,
                               m: ctx.state.buffer("m", count: avg.count), v: ctx.state.buffer("v", count: avg.count),
                               eta: s.eta, beta1: s.beta1, beta2: s.beta2, tau: s.tau)
            return (r.model, StrategyState(tensors: ["m": r.m, "v": r.v]))
        }
    }
}
