import FedAvg
import FlowerCore
import Strategies
import TestSupport

/// One tensor `w` holding `v`.
func flat(_ v: [Float]) -> Parameters {
    // A single 1-D tensor always matches its buffer.
    (try? Parameters(shapes: [("w", [v.count])], values: v)) ?? Parameters()
}

/// Runs one round of `strategy`'s aggregation the way the server loop does: `add` each
/// (values, numExamples), collecting refusals as failures, then `finish`.
func aggregateRound(_ strategy: any Strategy, round: Int = 1, global: [Float], state: StrategyState = StrategyState(),
                    _ updates: [([Float], Int)]) throws -> FitAggregate {
    var agg = strategy.makeFitAggregator(FitRoundContext(round: round, parameters: flat(global), state: state))
    var failures: [ClientFailure] = []
    for (k, u) in updates.enumerated() {
        do throws(ClientFailure) {
            try agg.add(FitRes(round: round, parameters: flat(u.0), numExamples: u.1), from: StubClient("c\(k)"))
        } catch { failures.append(error) }
    }
    return try agg.finish(failures: failures)
}
