import FedAvg
import FlowerCore

/// FedMedian: the coordinate-wise median of the round's updates (Yin, Chen, Ramchandran &
/// Bartlett, "Byzantine-Robust Distributed Learning: Towards Optimal Statistical Rates", ICML
/// 2018, arXiv:1803.01498). Semantics of Flower's flwr/server/strategy/fedmedian.py
/// (`aggregate_median`): unweighted (numExamples ignored, so inflated claims buy nothing), the
/// mean of the two middle values for an even count. Buffers the round's updates.
public struct FedMedian: FedAvgBased {
    public var base: FedAvg
    public var name: String { "FedMedian" }

    public init(base: FedAvg) { self.base = base }

    public func makeFitAggregator(_ context: FitRoundContext) -> any FitAggregator {
        BufferedAggregator(context, base: base) { updates in coordinateMedian(updates.map(\.values)) }
    }
}
