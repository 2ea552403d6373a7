import FedAvg
import FlowerCore

/// FedAvg with server momentum: Hsu, Qi & Brown, "Measuring the Effects of Non-Identical Data
/// Distribution for Federated Visual Classification", 2019 (arXiv:1909.06335). Semantics of
/// Flower's flwr/server/strategy/fedavgm.py (`server_learning_rate` 1.0, `server_momentum` 0.0 by
/// default, PyTorch's momentum convention); the maths is `fedAvgMStep`. The velocity is carried in
/// `StrategyState` (and so in the checkpoint) as `velocity`. Flower keys "first round" on
/// `server_round == 1`; we key it on the velocity being absent, which is the same on a fresh run
/// and keeps a resumed run exact.
public struct FedAvgM: FedAvgBased {
    public var base: FedAvg
    /// η, the server learning rate (`--server-learning-rate`).
    public var serverLearningRate: Double
    /// μ, the server momentum (`--server-momentum`).
    public var serverMomentum: Double

    public var name: String { "FedAvgM" }

    /// FedAvgM over `base`'s sampling with Flower's defaults η = 1, μ = 0.
    public init(base: FedAvg, serverLearningRate: Double = 1, serverMomentum: Double = 0) {
        self.base = base
        self.serverLearningRate = serverLearningRate
        self.serverMomentum = serverMomentum
    }

    public func makeFitAggregator(_ context: FitRoundContext) -> any FitAggregator {
        let (eta, mu) = (serverLearningRate, serverMomentum)
        return ServerStepAggregator(context, base: base) { ctx, avg in
            let r = fedAvgMStep(global: ctx.parameters.values, average: avg, velocity: ctx.state.buffer("velocity", count: avg.count),
                                serverLearningRate: eta, serverMomentum: mu)
            return (r.model, StrategyState(tensors: r.velocity.map { ["velocity": $0] } ?? [:]))
        }
    }
}
