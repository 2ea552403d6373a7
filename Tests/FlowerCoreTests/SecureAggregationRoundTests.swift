// The SecAgg+ fit round in the round loop, with in-process proxies (the client side is the real
// `SecAggParticipant`; a proxy can drop out at a given step by throwing, as a lost connection does).
import FedAvg
import FlowerCore
import Foundation
import Synchronization
import TestSupport
import XCTest

/// A client that trains by adding a fixed pseudo-random delta in [−1, 1] to the global model.
private struct DeltaTrainer: Client {
    let delta: [Float]
    let numExamples: Int

    init(seed: UInt64, count: Int, numExamples: Int) {
        var rng = SplitMix64(seed: seed)
        delta = (0 ..< count).map { _ in Float(Double(rng.next() >> 11) * 0x1p-53 * 2 - 1) }
        self.numExamples = numExamples
    }

    func getParameters(_ ins: GetParametersIns) async throws -> ParametersRes { throw TestFailure("unused") }
    func fit(_ ins: FitIns) async throws -> FitRes {
        var p = ins.parameters
        for i in p.values.indices { p.values[i] += delta[i] }
        return FitRes(round: ins.round, parameters: p, numExamples: numExamples, metrics: ["loss": .double(Double(numExamples))])
    }
    func evaluate(_ ins: EvaluateIns) async throws -> EvaluateRes { throw TestFailure("unused") }
}

/// The server's in-process handle on a `SecAggParticipant`; `dropAt` names the instruction at which
/// it stops answering (it throws, like a connection that closed).
private final class LocalProxy: ClientProxy {
    let id: String
    let partition: Int? = nil
    let trainer: DeltaTrainer
    let participant: SecAggParticipant
    let dropAt: String?
    private let received = Mutex<[String]>([])

    init(_ id: String, trainer: DeltaTrainer, dropAt: String? = nil) {
        self.id = id
        self.trainer = trainer
        participant = SecAggParticipant(client: trainer)
        self.dropAt = dropAt
    }

    var instructions: [String] { received.withLock { $0 } }

    func getParameters(_ ins: GetParametersIns, timeout: Duration) async throws -> ParametersRes { throw TestFailure("unused") }
    func fit(_ ins: FitIns, timeout: Duration) async throws -> FitRes { try await trainer.fit(ins) }
    func evaluate(_ ins: EvaluateIns, timeout: Duration) async throws -> EvaluateRes { throw TestFailure("unused") }
    func finish(roundsCompleted: Int, reason: String) async {}
    func reconnect(seconds: Int, reason: String) async {}

    func secureAggregation(_ ins: SecAggInstruction, timeout: Duration) async throws -> SecAggAnswer {
        received.withLock { $0.append(ins.name) }
        if ins.name == dropAt { throw TestFailure("connection lost (dropped at \(ins.name))") }
        return try await participant.handle(ins)
    }
}

final class SecureAggregationRoundTests: XCTestCase {
    static let length = 1_000

    private func global() throws -> Parameters {
        try Parameters(shapes: [("w", [Self.length - 10]), ("b", [10])],
                       values: (0 ..< Self.length).map { Float($0 % 7) * 0.25 - 0.5 })
    }

    private func proxies(_ n: Int, drop: [Int: String] = [:]) -> [LocalProxy] {
        (0 ..< n).map { i in
            LocalProxy("c\(i)", trainer: DeltaTrainer(seed: UInt64(100 + i), count: Self.length, numExamples: 10 + 7 * i),
                       dropAt: drop[i])
        }
    }

    private func server(_ clients: [LocalProxy], config: SecAggConfig = SecAggConfig(clippingRange: 2),
                        strategy: (any Strategy)? = nil) throws -> Server {
        let manager = InMemoryClientManager()
        for c in clients { _ = manager.register(c) }
        var options = ServerOptions(waitTimeout: .seconds(30))
        options.secureAggregation = config
        let fedAvg = FedAvg(fractionEvaluate: 0, minFitClients: 2, minAvailableClients: clients.count,
                            acceptFailures: true, initialParameters: try global())
        return Server(clientManager: manager, strategy: strategy ?? fedAvg, options: options)
    }

    /// Plain FedAvg's weighted average of the models of `clients` (the scalar reference), in Double.
    private func plainAverage(_ clients: [LocalProxy]) throws -> [Double] {
        let g = try global()
        let total = Double(clients.map(\.trainer.numExamples).reduce(0, +))
        return (0 ..< Self.length).map { i in
            clients.reduce(0.0) { $0 + Double($1.trainer.numExamples) * Double(g.values[i] + $1.trainer.delta[i]) } / total
        }
    }

    private func assertWithinBound(_ got: [Float], _ expected: [Double], bound: Double,
                                   file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(got.count, expected.count, file: file, line: line)
        let worst = zip(got, expected).map { abs(Double($0) - $1) }.max() ?? .infinity
        // The quantisation bound plus Float rounding of values of magnitude ≤ 2.5.
        XCTAssertLessThanOrEqual(worst, bound + 1e-6, "largest error \(worst) against bound \(bound)", file: file, line: line)
        XCTAssertGreaterThan(worst, 0, "a masked, quantised sum cannot be bit-exact everywhere", file: file, line: line)
    }

    /// 10 clients, default k = 8, t = 5: the model after the round equals plain FedAvg's weighted
    /// average within 2R/(Q − 1), and the record says who sent.
    func testAggregateEqualsPlainFedAvgWithinQuantisationBound() async throws {
        let clients = proxies(10)
        let summary = try await server(clients).fit(numRounds: 1, timeout: .seconds(120))
        let record = try XCTUnwrap(summary.history.rounds.first)
        let secagg = try XCTUnwrap(record.secureAggregation)
        XCTAssertEqual([secagg.sampled, secagg.sent, secagg.dropped, secagg.recovered], [10, 10, 0, 0])
        XCTAssertEqual(secagg.phases.map(\.name), ["key exchange", "sharing", "training + masking", "unmasking"])
        // Q: the largest power of two with 10 · 1000 · (Q − 1) < 2^32 is 2^18; bound 2·2/(2^18 − 1).
        XCTAssertEqual(secagg.quantizationErrorBound, 4.0 / Double((1 << 18) - 1), accuracy: 1e-15)
        XCTAssertEqual(record.fitClients, 10)
        XCTAssertEqual(record.failures, 0)
        XCTAssertTrue(record.jsonLine.contains("\"secagg\":{\"sampled\":10,\"sent\":10,\"dropped\":0,\"recovered\":0}"), record.jsonLine)
        assertWithinBound(summary.parameters.values, try plainAverage(clients), bound: secagg.quantizationErrorBound)
        // Unweighted mean of the clients' "loss" metric (their example counts stay masked): mean of 10 + 7i.
        XCTAssertEqual(record.fitMetrics["loss"]?.doubleValue ?? .nan, 41.5, accuracy: 1e-9)
        for c in clients {
            XCTAssertEqual(c.instructions, ["secure-aggregation setup", "neighbour keys", "forwarded shares", "unmask request"])
        }
    }

    /// One client drops during training (before its masked input): its pairwise masks are removed by
    /// reconstructing its mask key, and the model is the average of the other nine.
    func testOneDropoutBeforeMaskingCompletesWithoutIt() async throws {
        let clients = proxies(10, drop: [3: "forwarded shares"])
        let summary = try await server(clients).fit(numRounds: 1, timeout: .seconds(120))
        let record = try XCTUnwrap(summary.history.rounds.first)
        let secagg = try XCTUnwrap(record.secureAggregation)
        XCTAssertEqual([secagg.sent, secagg.dropped, secagg.recovered], [9, 1, 1])
        XCTAssertEqual(secagg.line, "secure aggregation: 9 sent, 1 dropped, recovered (1 dropped client mask removed)")
        XCTAssertEqual(record.fitClients, 9)
        XCTAssertEqual(record.failures, 1)
        let survivors = clients.enumerated().filter { $0.offset != 3 }.map(\.element)
        assertWithinBound(summary.parameters.values, try plainAverage(survivors), bound: secagg.quantizationErrorBound)
    }

    /// k − t = 3 clients drop (one before sharing, two before masking): with k = 8 each client keeps at
    /// least 5 = t live holders, so the round completes with the other seven.
    func testKMinusTDropoutsComplete() async throws {
        let clients = proxies(10, drop: [0: "neighbour keys", 4: "forwarded shares", 9: "forwarded shares"])
        let summary = try await server(clients).fit(numRounds: 1, timeout: .seconds(120))
        let record = try XCTUnwrap(summary.history.rounds.first)
        let secagg = try XCTUnwrap(record.secureAggregation)
        XCTAssertEqual([secagg.sent, secagg.dropped, secagg.recovered], [7, 3, 2])
        let survivors = clients.enumerated().filter { ![0, 4, 9].contains($0.offset) }.map(\.element)
        assertWithinBound(summary.parameters.values, try plainAverage(survivors), bound: secagg.quantizationErrorBound)
    }

    /// k − t + 1 = 4 clients drop before masking. On the 10-client ring of degree 8 each client has one
    /// non-neighbour, so among the six survivors some client has all four as neighbours and only
    /// 4 < t = 5 live holders: the round fails naming the threshold, nobody is asked for a share, and
    /// the server keeps the global model (the run fails, never a partly unmasked sum).
    func testKMinusTPlusOneDropoutsFailWithNoUnmasking() async throws {
        let dropped = [1, 2, 5, 7]
        let clients = proxies(10, drop: Dictionary(uniqueKeysWithValues: dropped.map { ($0, "forwarded shares") }))
        do {
            _ = try await server(clients).fit(numRounds: 1, timeout: .seconds(120))
            XCTFail("the round must fail")
        } catch let ServerError.roundFailed(round, _, reason) {
            XCTAssertEqual(round, 1)
            XCTAssertTrue(reason.contains("live share holders, 5 needed"), reason)
            XCTAssertTrue(reason.contains("nothing unmasked"), reason)
        }
        for c in clients {
            XCTAssertFalse(c.instructions.contains("unmask request"), "\(c.id) was asked for shares: \(c.instructions)")
        }
    }

    /// A proxy whose transport carries no secure aggregation (the protocol's default) is refused with
    /// the typed reason and counts as dropped before its keys; the others complete the round.
    func testUnsupportedClientIsRefusedByName() async throws {
        let clients = proxies(4)
        let legacy = FakeClient("legacy", onFit: { ins, _ in FitRes(round: ins.round, parameters: ins.parameters, numExamples: 1) })
        let g = try global()
        let calls: [(client: any ClientProxy, ins: FitIns)] = (clients as [any ClientProxy] + [legacy]).map { ($0, FitIns(round: 1, parameters: g)) }
        let outcome = await SecAggRoundDriver(config: SecAggConfig(clippingRange: 2)).run(round: 1, calls: calls, global: g,
                                                                                          timeout: .seconds(120))
        guard case let .aggregated(res, summary, failures, _) = outcome else { return XCTFail("\(outcome)") }
        XCTAssertEqual([summary.sampled, summary.sent, summary.dropped], [5, 4, 1])
        XCTAssertEqual(failures.map(\.clientID), ["legacy"])
        XCTAssertTrue(failures[0].reason.contains("client legacy does not support secure aggregation"), failures[0].reason)
        XCTAssertTrue(legacy.recorded.fits.isEmpty, "a client that cannot mask must never be sent a plain fit")
        // The weight is Σ min(examples, max_weight) of the four: 10 + 17 + 24 + 31.
        XCTAssertEqual(res.numExamples, 82)
        assertWithinBound(res.parameters.values, try plainAverage(clients), bound: summary.quantizationErrorBound)
    }

    /// An aggregation that needs individual updates refuses the round before any message goes out.
    func testAggregationNeedingIndividualUpdatesIsRefusedBeforeAnyMessage() async throws {
        struct Buffering: FitAggregator {
            var resultCount: Int { 0 }
            mutating func add(_ result: FitRes, from client: any ClientProxy) throws(ClientFailure) {}
            func finish(failures: [ClientFailure]) throws(StrategyRefusal) -> FitAggregate { throw StrategyRefusal("unused") }
        }
        struct Median: FedAvgBasedTestStrategy {
            let base: FedAvg
            func makeFitAggregator(_ context: FitRoundContext) -> any FitAggregator { Buffering() }
        }
        let clients = proxies(3)
        let base = FedAvg(fractionEvaluate: 0, minAvailableClients: 3, initialParameters: try global())
        do {
            _ = try await server(clients, strategy: Median(base: base)).fit(numRounds: 1, timeout: .seconds(60))
            XCTFail("the round must be refused")
        } catch let ServerError.roundFailed(_, _, reason) {
            XCTAssertTrue(reason.contains("needs each client's own update, which secure aggregation hides"), reason)
        }
        for c in clients { XCTAssertEqual(c.instructions, []) }
    }

    /// Server-side --clip-norm cannot see the individual updates: refused before the first round.
    func testServerSideClipNormIsRefused() async throws {
        let manager = InMemoryClientManager()
        var options = ServerOptions(waitTimeout: .seconds(1), clipNorm: 1)
        options.secureAggregation = SecAggConfig()
        let server = Server(clientManager: manager, strategy: FedAvg(initialParameters: try global()), options: options)
        do {
            _ = try await server.fit(numRounds: 1, timeout: .seconds(5))
            XCTFail("must be refused")
        } catch let ServerError.invalidArgument(reason) {
            XCTAssertTrue(reason.contains("--clip-norm clips each client's own update on the server"), reason)
        }
    }
}

/// FedAvg's sampling and evaluation with a test-chosen aggregation.
private protocol FedAvgBasedTestStrategy: Strategy {
    var base: FedAvg { get }
}

extension FedAvgBasedTestStrategy {
    var name: String { "test" }
    var seed: UInt64 { base.seed }
    var minAvailableClients: Int { base.minAvailableClients }
    func initializeParameters() async throws -> Parameters? { try await base.initializeParameters() }
    func configureFit(round: Int, parameters: Parameters,
                      clientManager: any SamplingClientManager) -> [(client: any ClientProxy, ins: FitIns)] {
        base.configureFit(round: round, parameters: parameters, clientManager: clientManager)
    }
    func configureEvaluate(round: Int, parameters: Parameters,
                           clientManager: any SamplingClientManager) -> [(client: any ClientProxy, ins: EvaluateIns)] { [] }
    func aggregateEvaluate(round: Int, results: [(client: any ClientProxy, res: EvaluateRes)],
                           failures: [ClientFailure]) -> (loss: Double?, metrics: Metrics) { (nil, [:]) }
    func evaluate(round: Int, parameters: Parameters) async throws -> (loss: Double, metrics: Metrics)? { nil }
}
