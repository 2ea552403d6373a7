import FedAvg
import FlowerCore
import TestSupport
import XCTest

final class FedAvgTests: XCTestCase {
    private func manager(_ n: Int) -> InMemoryClientManager {
        let m = InMemoryClientManager()
        for i in 0 ..< n { _ = m.register(StubClient(String(format: "c%02d", i))) }
        return m
    }

    private func model(_ v: [Float]) throws -> Parameters { try Parameters(shapes: [("w", [v.count])], values: v) }

    func testNumberOfSampledClientsIsMaxOfMinimumAndFraction() {
        let s = FedAvg(fractionFit: 0.3, fractionEvaluate: 0.5, minFitClients: 2, minEvaluateClients: 4)
        XCTAssertEqual(s.numFitClients(available: 10), 3)   // ⌊0.3 × 10⌋ = 3 > 2
        XCTAssertEqual(s.numFitClients(available: 5), 2)    // ⌊1.5⌋ = 1 < 2
        XCTAssertEqual(s.numFitClients(available: 100), 30)
        XCTAssertEqual(s.numEvaluationClients(available: 10), 5)
        XCTAssertEqual(s.numEvaluationClients(available: 6), 4)
        XCTAssertEqual(FedAvg().numFitClients(available: 10), 10, "Flower's default: every client")
    }

    func testConfigureFitSamplesBySeedAndRoundAndSendsTheRoundConfig() throws {
        let m = manager(10)
        let s = FedAvg(fractionFit: 0.3, seed: 42, onFitConfig: { ["lr": .double(0.01), "epochs": .int(Int64($0))] })
        let p = try model([1, 2])
        let r1 = s.configureFit(round: 1, parameters: p, clientManager: m)
        XCTAssertEqual(r1.count, 3)
        XCTAssertEqual(Set(r1.map(\.client.id)).count, 3)
        XCTAssertEqual(r1.map(\.client.id), s.configureFit(round: 1, parameters: p, clientManager: m).map(\.client.id))
        XCTAssertEqual(r1[0].ins.config, ["lr": .double(0.01), "epochs": .int(1)])
        XCTAssertEqual(r1[0].ins.parameters, p)
        XCTAssertEqual(r1[0].ins.round, 1)
        let rounds = (2 ... 8).map { s.configureFit(round: $0, parameters: p, clientManager: m).map(\.client.id) }
        XCTAssertTrue(rounds.contains { Set($0) != Set(r1.map(\.client.id)) }, "rounds draw different clients")
        var other = s
        other.seed = 43
        let seeds = (1 ... 8).map { other.configureFit(round: $0, parameters: p, clientManager: m).map(\.client.id) }
        XCTAssertNotEqual(seeds, [r1.map(\.client.id)] + rounds, "another seed, another sequence")
    }

    /// Poisson sampling over 400 rounds of 1,000 clients at q = 0.05: round sizes are
    /// Binomial(1000, 0.05), mean q·N = 50 (the mean of 400 is within ±1.03 at 3 sd) and variance
    /// q(1−q)N = 47.5 (the sample variance's sd is ~3.4: ±15 is loose); every client is drawn
    /// about 20 times. Uniform stays exactly ⌊fraction·N⌋.
    func testPoissonRoundSizesAreBinomialAndUniformIsUnchanged() throws {
        let m = manager(1000)
        let p = try model([1])
        var s = FedAvg(fractionFit: 0.05, minFitClients: 1, seed: 7)
        s.sampling = .poisson(rate: 0.05)
        var sizes: [Double] = []
        var draws: [String: Int] = [:]
        for round in 1 ... 400 {
            let chosen = s.configureFit(round: round, parameters: p, clientManager: m).map(\.client.id)
            XCTAssertEqual(Set(chosen).count, chosen.count, "distinct clients")
            sizes.append(Double(chosen.count))
            for id in chosen { draws[id, default: 0] += 1 }
        }
        let mean = sizes.reduce(0, +) / Double(sizes.count)
        let variance = sizes.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(sizes.count - 1)
        XCTAssertEqual(mean, 50, accuracy: 1.5)
        XCTAssertEqual(variance, 47.5, accuracy: 15)
        XCTAssertGreaterThan(Set(sizes).count, 5, "round sizes vary")
        XCTAssertEqual(draws.count, 1000, "every client drawn at some point")
        XCTAssertEqual(s.configureFit(round: 3, parameters: p, clientManager: m).map(\.client.id),
                       s.configureFit(round: 3, parameters: p, clientManager: m).map(\.client.id), "seeded")
        s.sampling = .uniform
        for round in 1 ... 20 { XCTAssertEqual(s.configureFit(round: round, parameters: p, clientManager: m).count, 50) }
    }

    func testNoFederatedEvaluationWhenFractionEvaluateIsZero() throws {
        let s = FedAvg(fractionEvaluate: 0)
        XCTAssertTrue(s.configureEvaluate(round: 1, parameters: try model([1]), clientManager: manager(5)).isEmpty)
        let e = FedAvg(fractionEvaluate: 0.5, minEvaluateClients: 1, onEvaluateConfig: { _ in ["batch_size": .int(64)] })
        let calls = e.configureEvaluate(round: 1, parameters: try model([1]), clientManager: manager(5))
        XCTAssertEqual(calls.count, 2)
        XCTAssertEqual(calls[0].ins.config["batch_size"], .int(64))
    }

    /// Runs one round's aggregation over a list the way the server loop does: `add` each result,
    /// collect refusals as failures, then `finish`.
    private func aggregateRound(_ s: FedAvg, global: Parameters,
                                _ results: [(client: any ClientProxy, res: FitRes)]) throws -> FitAggregate {
        var agg = s.makeFitAggregator(FitRoundContext(round: 1, parameters: global))
        var failures: [ClientFailure] = []
        for r in results {
            do throws(ClientFailure) { try agg.add(r.res, from: r.client) } catch { failures.append(error) }
        }
        return try agg.finish(failures: failures)
    }

    func testARoundWeighsByExamplesAndTurnsBadUpdatesIntoFailures() throws {
        let s = FedAvg(minFitClients: 2)
        let results: [(client: any ClientProxy, res: FitRes)] = [
            (StubClient("a"), FitRes(round: 1, parameters: try model([2, 4]), numExamples: 1, metrics: ["loss": .double(3)])),
            (StubClient("b"), FitRes(round: 1, parameters: try model([6, 8]), numExamples: 3, metrics: ["loss": .double(1)])),
            (StubClient("c"), FitRes(round: 1, parameters: try model([.nan, 0]), numExamples: 5)),
        ]
        let out = try aggregateRound(s, global: try model([0, 0]), results)
        XCTAssertEqual(out.parameters.values, [5, 7])  // (1·2 + 3·6)/4, (1·4 + 3·8)/4
        XCTAssertEqual(out.metrics["loss"], .double(1.5))
        XCTAssertTrue(out.state.isEmpty, "FedAvg keeps no server state")

        let strict = FedAvg(minFitClients: 2, acceptFailures: false)
        XCTAssertThrowsError(try aggregateRound(strict, global: try model([0, 0]), results)) {
            XCTAssertTrue("\($0)".contains("client c: update has a non-finite value"), "\($0)")
            XCTAssertTrue("\($0)".contains("failures are not accepted"), "\($0)")
        }
        XCTAssertThrowsError(try aggregateRound(s, global: try model([0, 0]), [])) {
            XCTAssertTrue("\($0)".contains("no client returned a usable update"), "\($0)")
        }
    }

    func testStreamingAggregatorRefusesBelowMinFitClients() throws {
        let s = FedAvg(minFitClients: 3)
        var agg = s.makeFitAggregator(FitRoundContext(round: 1, parameters: try model([0, 0])))
        try agg.add(FitRes(round: 1, parameters: try model([1, 1]), numExamples: 1), from: StubClient("a"))
        try agg.add(FitRes(round: 1, parameters: try model([3, 3]), numExamples: 1), from: StubClient("b"))
        XCTAssertThrowsError(try agg.add(FitRes(round: 1, parameters: try model([1, 1, 1]), numExamples: 1),
                                         from: StubClient("c"))) {
            XCTAssertEqual(($0 as? ClientFailure)?.kind, .rejected)
            XCTAssertEqual(($0 as? ClientFailure)?.clientID, "c")
        }
        let lost = ClientFailure(clientID: "c", kind: .timeout, reason: "late")
        XCTAssertThrowsError(try agg.finish(failures: [lost])) {
            XCTAssertEqual(($0 as? StrategyRefusal)?.reason, "only 2 result(s), fewer than minFitClients = 3")
        }
        let relaxed = FedAvg(minFitClients: 2)
        var ok = relaxed.makeFitAggregator(FitRoundContext(round: 1, parameters: try model([0, 0])))
        try ok.add(FitRes(round: 1, parameters: try model([1, 1]), numExamples: 1), from: StubClient("a"))
        try ok.add(FitRes(round: 1, parameters: try model([3, 3]), numExamples: 1), from: StubClient("b"))
        XCTAssertEqual(try ok.finish(failures: [lost]).parameters.values, [2, 2])
    }

    func testAggregateEvaluateIsTheWeightedLoss() throws {
        let s = FedAvg()
        let results: [(client: any ClientProxy, res: EvaluateRes)] = [
            (StubClient("a"), EvaluateRes(round: 1, loss: 2, numExamples: 1, metrics: ["accuracy": .double(0.2)])),
            (StubClient("b"), EvaluateRes(round: 1, loss: 1, numExamples: 2, metrics: ["accuracy": .double(0.5)])),
            (StubClient("c"), EvaluateRes(round: 1, loss: 2, numExamples: 1, metrics: ["accuracy": .double(0.2)])),
        ]
        let (loss, metrics) = s.aggregateEvaluate(round: 1, results: results, failures: [])
        XCTAssertEqual(loss, 1.5)
        XCTAssertEqual(metrics["accuracy"]?.doubleValue ?? .nan, 0.35, accuracy: 1e-12)
        let strict = FedAvg(acceptFailures: false)
        let failed = strict.aggregateEvaluate(round: 1, results: results,
                                              failures: [ClientFailure(clientID: "d", kind: .error, reason: "x")])
        XCTAssertNil(failed.loss)
    }
}
