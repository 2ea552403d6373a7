import FedAvg
import FlowerCore

/// FedTrimmedAvg: the coordinate-wise β-trimmed mean (Yin, Chen, Ramchandran & Bartlett,
/// "Byzantine-Robust Distributed Learning: Towards Optimal Statistical Rates", ICML 2018,
/// arXiv:1803.01498). Semantics of Flower's flwr/server/strategy/fedtrimmedavg.py
/// (`aggregate_trimmed_avg`, scipy's `trim_mean`): ⌊β·n⌋ values cut from each end per coordinate,
/// unweighted; Flower's default β = 0.2. Buffers the round's updates.
public struct FedTrimmedAvg: FedAvgBased {
    public var base: FedAvg
    /// β, the fraction cut from each end (`--beta`).
    public var beta: Double
    public var name: String { "FedTrimmedAvg" }

    public init(base: FedAvg, beta: Double = 0.2) {
        self.base = base
        self.beta = beta
    }

    public func makeFitAggregator(_ context: FitRoundContext) -> any FitAggregator {
        let beta = self.beta
        return BufferedAggregator(context, base: base) { updates throws(RobustAggregationError) in
            try coordinateTrimmedMean(updates.map(\.values), beta: beta)
        }
    }
}
