import FedAvg
import FlowerCore
import Foundation
import Testing

/// What an authenticated but hostile client can send: every value it controls is bounded before
/// use, and nothing it sends can trap the server.
@Suite struct HostileAnswerTests {
    private func manager(_ clients: [FakeClient]) -> InMemoryClientManager {
        let m = InMemoryClientManager()
        for c in clients { _ = m.register(c) }
        return m
    }

    private func claiming(_ id: String, numExamples: Int, delta: Float = 1, metrics: Metrics = [:]) -> FakeClient {
        FakeClient(id, onFit: { ins, _ in
            var p = ins.parameters
            for i in p.values.indices { p.values[i] += delta }
            return FitRes(round: ins.round, parameters: p, numExamples: numExamples, metrics: metrics)
        })
    }

    /// `Int64.max` examples (what the wire allows) and 2³¹ + 1 are refused with a reason; 2³¹
    /// itself is accepted. The run completes and the model is the honest clients' average.
    @Test(arguments: [Int(Int64.max), (1 << 31) + 1])
    func inflatedNumExamplesIsARejectedUpdate(claim: Int) async throws {
        let logs = LogStore()
        let clients = [claiming("liar", numExamples: claim, delta: 100),
                       claiming("a", numExamples: 1, delta: 1), claiming("b", numExamples: 3, delta: 5)]
        let strategy = FedAvg(fractionEvaluate: 0, minFitClients: 2, minAvailableClients: 3,
                              initialParameters: try model([0, 0, 0]))
        let summary = try await Server(clientManager: manager(clients), strategy: strategy, logger: logs.logger)
            .fit(numRounds: 2, timeout: .seconds(30))
        #expect(summary.parameters.values == [8, 8, 8], "(1·1 + 3·5)/4 = 4 per round, the liar ignored")
        #expect(summary.history.rounds.map(\.failures) == [1, 1])
        #expect(logs.contains("client liar: update refused: claims numExamples = \(claim), above --max-examples 2147483648"),
                "\(logs.all)")
    }

    @Test func theLargestAllowedClaimIsAcceptedAndTheSumCannotOverflow() async throws {
        let clients = [claiming("a", numExamples: 1 << 31, delta: 2), claiming("b", numExamples: 1 << 31, delta: 4)]
        let strategy = FedAvg(fractionEvaluate: 0, minFitClients: 2, minAvailableClients: 2,
                              initialParameters: try model([0, 0, 0]))
        let summary = try await Server(clientManager: manager(clients), strategy: strategy)
            .fit(numRounds: 1, timeout: .seconds(30))
        #expect(summary.parameters.values == [3, 3, 3])
        #expect(summary.history.rounds[0].failures == 0)
    }

    /// Federated evaluation: `numExamples = Int64.max`, a NaN loss and an infinite metric are each
    /// a rejected evaluation; the round's federated loss and accuracy come from the honest client.
    @Test func hostileEvaluationsAreRejectedAndTheFederatedLossStaysFinite() async throws {
        func evaluator(_ id: String, loss: Double, n: Int, acc: Double) -> FakeClient {
            FakeClient(id, onFit: { ins, _ in FitRes(round: ins.round, parameters: ins.parameters, numExamples: 1) },
                       onEvaluate: { ins in EvaluateRes(round: ins.round, loss: loss, numExamples: n,
                                                        metrics: ["accuracy": .double(acc)]) })
        }
        let logs = LogStore()
        let clients = [evaluator("huge", loss: 1, n: Int(Int64.max), acc: 0.1),
                       evaluator("nanloss", loss: .nan, n: 10, acc: 0.1),
                       evaluator("infmetric", loss: 1, n: 10, acc: .infinity),
                       evaluator("honest", loss: 0.5, n: 10, acc: 0.75)]
        let strategy = FedAvg(minFitClients: 1, minEvaluateClients: 4, minAvailableClients: 4,
                              initialParameters: try model([1, 2, 3]))
        let summary = try await Server(clientManager: manager(clients), strategy: strategy, logger: logs.logger)
            .fit(numRounds: 1, timeout: .seconds(30))
        let r = try #require(summary.history.rounds.first)
        #expect(r.loss == 0.5)
        #expect(r.accuracy == 0.75)
        #expect(r.failures == 3)
        #expect(logs.contains("client huge: evaluation refused: claims numExamples = 9223372036854775807"), "\(logs.all)")
        #expect(logs.contains("client nanloss: evaluation refused: reports a non-finite loss (nan)"), "\(logs.all)")
        #expect(logs.contains("client infmetric: evaluation refused: reports a non-finite metric accuracy = inf"), "\(logs.all)")
    }

    @Test func aNonFiniteFitMetricIsARejectedUpdate() async throws {
        let logs = LogStore()
        let clients = [claiming("bad", numExamples: 1, delta: 50, metrics: ["train_loss": .double(.nan)]),
                       claiming("a", numExamples: 1, delta: 2), claiming("b", numExamples: 1, delta: 4)]
        let strategy = FedAvg(fractionEvaluate: 0, minFitClients: 2, minAvailableClients: 3,
                              initialParameters: try model([0, 0, 0]))
        let summary = try await Server(clientManager: manager(clients), strategy: strategy, logger: logs.logger)
            .fit(numRounds: 1, timeout: .seconds(30))
        #expect(summary.parameters.values == [3, 3, 3])
        #expect(logs.contains("client bad: update refused: reports a non-finite metric train_loss = nan"), "\(logs.all)")
    }

    /// Round 1 accepts a ×1000 update; in round 2 the honest clients come back with NaN (as they
    /// do from a poisoned model). The log names the outlier instead of "lower its --lr", and the
    /// error the run stops with says so too.
    @Test func nonFiniteHonestUpdatesAfterAnAcceptedOutlierNameTheOutlier() async throws {
        func honest(_ id: String) -> FakeClient {
            FakeClient(id, onFit: { ins, call in
                var p = ins.parameters
                for i in p.values.indices { p.values[i] = call == 0 ? p.values[i] + 1 : .nan }
                return FitRes(round: ins.round, parameters: p, numExamples: 10)
            })
        }
        let attacker = FakeClient("attacker", onFit: { ins, _ in
            var p = ins.parameters
            for i in p.values.indices { p.values[i] = p.values[i] * 1000 + 1000 }
            return FitRes(round: ins.round, parameters: p, numExamples: 10)
        })
        let logs = LogStore()
        let strategy = FedAvg(fractionEvaluate: 0, minFitClients: 3, minAvailableClients: 4, acceptFailures: true,
                              initialParameters: try model([0, 0, 0]))
        await #expect(throws: ServerError.self) {
            _ = try await Server(clientManager: manager([honest("h1"), honest("h2"), honest("h3"), attacker]),
                                 strategy: strategy, logger: logs.logger).fit(numRounds: 2, timeout: .seconds(30))
        }
        #expect(logs.contains("in round 1 client attacker sent an outlier update"), "\(logs.all)")
        #expect(logs.contains("client h1: update has non-finite values right after round 1, in which client attacker sent an outlier update"),
                "\(logs.all)")
        #expect(!logs.contains("lower its --lr"), "\(logs.all)")
        #expect(logs.contains("which most likely poisoned the global model"), "\(logs.all)")
    }

    /// Without an outlier before, a non-finite update keeps the usual advice.
    @Test func withoutAnOutlierTheAdviceIsTheLearningRate() async throws {
        let logs = LogStore()
        let nan = FakeClient("nan", onFit: { ins, _ in
            var p = ins.parameters
            p.values[0] = .nan
            return FitRes(round: ins.round, parameters: p, numExamples: 1)
        })
        let strategy = FedAvg(fractionEvaluate: 0, minFitClients: 2, minAvailableClients: 3,
                              initialParameters: try model([0, 0, 0]))
        _ = try await Server(clientManager: manager([nan, claiming("a", numExamples: 1), claiming("b", numExamples: 1)]),
                             strategy: strategy, logger: logs.logger).fit(numRounds: 1, timeout: .seconds(30))
        #expect(logs.contains("the client diverged: lower its --lr"), "\(logs.all)")
    }

    /// `--clip-norm`: a ×1000 update is scaled to norm C before the strategy averages it.
    @Test func clipNormBoundsEveryUpdateAroundTheGlobalModel() async throws {
        // Updates: +[3, 4, 0] (norm 5) and +[300, 400, 0] (norm 500); with C = 5 both become [3, 4, 0].
        let small = FakeClient("small", onFit: { ins, _ in
            FitRes(round: ins.round, parameters: try model([3, 4, 0]), numExamples: 1)
        })
        let big = FakeClient("big", onFit: { ins, _ in
            FitRes(round: ins.round, parameters: try model([300, 400, 0]), numExamples: 1)
        })
        let strategy = FedAvg(fractionEvaluate: 0, minFitClients: 2, minAvailableClients: 2,
                              initialParameters: try model([0, 0, 0]))
        let summary = try await Server(clientManager: manager([small, big]), strategy: strategy,
                                       options: ServerOptions(clipNorm: 5)).fit(numRounds: 1, timeout: .seconds(30))
        #expect(summary.parameters.values == [3, 4, 0])
    }

    @Test func weightedLossAverageOfHugeWeightsDoesNotTrap() {
        let avg = weightedLossAvg([(Int.max, 1.0), (Int.max, 3.0)])
        #expect(avg == 2)
    }

    @Test func theRunningTotalOfExamplesRefusesToOverflow() throws {
        var avg = WeightedAverage(template: try model([0, 0, 0]))
        try avg.add(try model([1, 1, 1]), numExamples: Int.max)
        #expect(throws: UpdateRejection.examplesOverflow(1, total: Int.max)) {
            try avg.add(try model([1, 1, 1]), numExamples: 1)
        }
        #expect(avg.count == 1)
    }

    @Test func outlierDetectionNeedsThreeUpdatesAndATenfoldGap() {
        #expect(OutlierNote.find(round: 1, norms: [("a", 1), ("b", 1000)]) == nil)
        #expect(OutlierNote.find(round: 1, norms: [("a", 1), ("b", 2), ("c", 9)]) == nil)
        let note = OutlierNote.find(round: 3, norms: [("a", 1), ("b", 2), ("c", 40)])
        #expect(note == OutlierNote(round: 3, clientID: "c", norm: 40, ratio: 20))
    }
}
