import FedAvg
import FlowerCore
import TestSupport
import Foundation
import XCTest

final class ServerTests: XCTestCase {
    private func manager(_ clients: [FakeClient]) -> InMemoryClientManager {
        let m = InMemoryClientManager()
        for c in clients { _ = m.register(c) }
        return m
    }

    /// 3 clients, 2 rounds: each round's model is Σ nᵢ(w + dᵢ) / Σ nᵢ = w + Σ nᵢdᵢ / 6.
    func testThreeClientsTwoRoundsEqualHandComputedWeightedAverage() async throws {
        let clients = [adder("a", delta: [1, 2, 3], numExamples: 1),
                       adder("b", delta: [4, 5, 6], numExamples: 2),
                       adder("c", delta: [7, 8, 9], numExamples: 3)]
        let strategy = FedAvg(fractionEvaluate: 0, minFitClients: 3, minAvailableClients: 3,
                              initialParameters: try model([0, 0, 0]),
                              onFitConfig: { round in ["epochs": .int(1), "lr": .double(0.01 * Double(round))] },
                              evaluateFn: { _, p in (Double(p.values.reduce(0, +)), ["accuracy": .double(0.25)]) })
        let server = Server(clientManager: manager(clients), strategy: strategy)
        let summary = try await server.fit(numRounds: 2, timeout: .seconds(30))

        // Σ nᵢdᵢ = 1·[1,2,3] + 2·[4,5,6] + 3·[7,8,9] = [30, 36, 42]; / 6 = [5, 6, 7] per round.
        XCTAssertEqual(summary.parameters.values, [10, 12, 14])
        XCTAssertEqual(summary.parameters.layout.map(\.name), ["w", "b"])
        XCTAssertEqual(summary.roundsCompleted, 2)
        XCTAssertEqual(summary.history.rounds.map(\.round), [1, 2])
        XCTAssertEqual(summary.history.rounds.map(\.loss), [18, 36])  // central: sum of the parameters
        XCTAssertEqual(summary.history.rounds.map(\.accuracy), [0.25, 0.25])
        XCTAssertEqual(summary.history.rounds.map(\.fitClients), [3, 3])
        XCTAssertEqual(summary.history.rounds.map(\.failures), [0, 0])
        // Each round: 3 clients × 3 floats × 4 bytes each way.
        XCTAssertEqual(summary.history.rounds.map(\.bytesOut), [36, 36])
        XCTAssertEqual(summary.history.rounds.map(\.bytesIn), [36, 36])
        for c in clients {
            let fits = c.recorded.fits
            XCTAssertEqual(fits.map(\.round), [1, 2])
            XCTAssertEqual(fits[1].parameters.values, [5, 6, 7], "round 2 must start from round 1's average")
            XCTAssertEqual(fits[1].config["lr"], .double(0.02))
            XCTAssertEqual(fits[0].config["epochs"], .int(1))
            XCTAssertEqual(c.recorded.finishes.map(\.rounds), [2], "finish once, after the last round")
        }
    }

    func testFederatedEvaluationGivesWeightedLossAndAccuracy() async throws {
        func client(_ id: String, loss: Double, acc: Double, n: Int) -> FakeClient {
            FakeClient(id, onFit: { ins, _ in FitRes(round: ins.round, parameters: ins.parameters, numExamples: 1) },
                       onEvaluate: { ins in EvaluateRes(round: ins.round, loss: loss, numExamples: n,
                                                        metrics: ["accuracy": .double(acc)]) })
        }
        let clients = [client("a", loss: 2, acc: 0.5, n: 1), client("b", loss: 1, acc: 0.8, n: 3)]
        let strategy = FedAvg(initialParameters: try model([1, 2, 3]))
        let summary = try await Server(clientManager: manager(clients), strategy: strategy)
            .fit(numRounds: 1, timeout: .seconds(30))
        let r = try XCTUnwrap(summary.history.rounds.first)
        XCTAssertEqual(try XCTUnwrap(r.loss), (2 * 1 + 1 * 3) / 4.0, accuracy: 1e-12)
        XCTAssertEqual(try XCTUnwrap(r.accuracy), (0.5 * 1 + 0.8 * 3) / 4.0, accuracy: 1e-12)
        XCTAssertEqual(r.federatedLoss, r.loss)
    }

    func testNonFiniteAndWrongShapeUpdatesBecomeFailuresWithLoggedReasons() async throws {
        let nan = FakeClient("nan", onFit: { ins, _ in
            var p = ins.parameters
            p.values[1] = .nan
            return FitRes(round: ins.round, parameters: p, numExamples: 100)
        })
        let inf = FakeClient("inf", onFit: { ins, _ in
            var p = ins.parameters
            p.values[2] = -.infinity
            return FitRes(round: ins.round, parameters: p, numExamples: 100)
        })
        let shape = FakeClient("shape", onFit: { ins, _ in
            FitRes(round: ins.round, parameters: try Parameters(shapes: [("w", [3])], values: [9, 9, 9]),
                   numExamples: 100)
        })
        let good = [adder("g1", delta: [1, 1, 1], numExamples: 1), adder("g2", delta: [5, 5, 5], numExamples: 3)]
        let logs = LogCapture()
        let strategy = FedAvg(fractionEvaluate: 0, minFitClients: 2, minAvailableClients: 5,
                              initialParameters: try model([0, 0, 0]))
        let summary = try await Server(clientManager: manager(good + [nan, inf, shape]), strategy: strategy,
                                       logger: logs.logger).fit(numRounds: 1, timeout: .seconds(30))
        // (1·1 + 3·5) / 4 = 4: the rejected updates (weight 100 each) do not count.
        XCTAssertEqual(summary.parameters.values, [4, 4, 4])
        XCTAssertEqual(summary.history.rounds[0].fitClients, 2)
        XCTAssertEqual(summary.history.rounds[0].failures, 3)
        XCTAssertTrue(logs.contains("client nan: update has a non-finite value in w (flat index 1)"), "\(logs.text)")
        XCTAssertTrue(logs.contains("client inf: update has a non-finite value in b (flat index 2)"), "\(logs.text)")
        XCTAssertTrue(logs.contains("client shape: update layout differs"), "\(logs.text)")
    }

    func testThrowingAndHangingClientsBecomeFailuresAndTheRoundCompletes() async throws {
        let thrower = FakeClient("thrower", onFit: { _, _ in throw TestFailure("connection reset by peer") })
        let sleeper = FakeClient("sleeper", onFit: { ins, _ in
            await hangerGate.wait()
            return FitRes(round: ins.round, parameters: ins.parameters, numExamples: 1)
        })
        let good = adder("good", delta: [2, 4, 6], numExamples: 7)
        let logs = LogCapture()
        let strategy = FedAvg(fractionEvaluate: 0, minFitClients: 1, minAvailableClients: 3,
                              initialParameters: try model([1, 1, 1]))
        let server = Server(clientManager: manager([thrower, sleeper, good]), strategy: strategy,
                            logger: logs.logger)
        let summary = try await server.fit(numRounds: 1, timeout: .milliseconds(300))
        hangerGate.open()
        XCTAssertEqual(summary.parameters.values, [3, 5, 7])
        XCTAssertEqual(summary.history.rounds[0].fitClients, 1)
        XCTAssertEqual(summary.history.rounds[0].failures, 2)
        XCTAssertTrue(logs.contains("client thrower: connection reset by peer"), "\(logs.text)")
        XCTAssertTrue(logs.contains("client sleeper: no answer within the round deadline"), "\(logs.text)")
    }

    func testTooFewResultsStopWithATypedErrorAndFinishIsStillSent() async throws {
        let bad = FakeClient("bad", onFit: { _, _ in throw TestFailure("killed") })
        let good = adder("good", delta: [1, 1, 1], numExamples: 1)
        let strategy = FedAvg(fractionEvaluate: 0, minFitClients: 2, minAvailableClients: 2, acceptFailures: false,
                              initialParameters: try model([0, 0, 0]))
        do {
            _ = try await Server(clientManager: manager([bad, good]), strategy: strategy)
                .fit(numRounds: 3, timeout: .seconds(30))
            XCTFail("a round without enough results must stop the run")
        } catch {
            guard case .roundFailed(let round, let attempts, let reason) = error else {
                return XCTFail("expected roundFailed, got \(error)")
            }
            XCTAssertEqual(round, 1)
            XCTAssertEqual(attempts, 1)
            XCTAssertTrue(reason.contains("failures are not accepted"), reason)
            XCTAssertTrue(error.description.contains("--accept-failures"), error.description)
        }
        XCTAssertEqual(good.recorded.finishes.count, 1)
        XCTAssertTrue(good.recorded.finishes[0].reason.contains("server stopped"), good.recorded.finishes[0].reason)
    }

    func testARefusedRoundIsRetriedWhenAttemptsAllow() async throws {
        let flaky = FakeClient("flaky", onFit: { ins, call in
            if call == 0 { throw TestFailure("first call fails") }
            var p = ins.parameters
            for i in p.values.indices { p.values[i] += 3 }
            return FitRes(round: ins.round, parameters: p, numExamples: 1)
        })
        let good = adder("good", delta: [1, 1, 1], numExamples: 1)
        let strategy = FedAvg(fractionEvaluate: 0, minFitClients: 2, minAvailableClients: 2,
                              initialParameters: try model([0, 0, 0]))
        let logs = LogCapture()
        let options = ServerOptions(roundAttempts: 2, retryDelay: .zero)
        let summary = try await Server(clientManager: manager([flaky, good]), strategy: strategy, options: options,
                                       logger: logs.logger).fit(numRounds: 1, timeout: .seconds(30))
        XCTAssertEqual(summary.parameters.values, [2, 2, 2])  // (3 + 1) / 2 from the second attempt
        XCTAssertEqual(good.recorded.fits.count, 2)
        XCTAssertTrue(logs.contains("only 1 result(s), fewer than minFitClients = 2"), "\(logs.text)")
        XCTAssertTrue(logs.contains("retrying (attempt 2 of 2)"), "\(logs.text)")
    }

    func testWaitingForTooFewClientsEndsWithAClearError() async throws {
        let strategy = FedAvg(minAvailableClients: 3, initialParameters: try model([0, 0, 0]))
        let server = Server(clientManager: manager([adder("a", delta: [0, 0, 0], numExamples: 1)]),
                            strategy: strategy, options: ServerOptions(waitTimeout: .milliseconds(50)))
        do {
            _ = try await server.fit(numRounds: 1, timeout: .seconds(30))
            XCTFail("must not start without enough clients")
        } catch {
            guard case .notEnoughClients(let connected, let needed, _) = error else {
                return XCTFail("expected notEnoughClients, got \(error)")
            }
            XCTAssertEqual(connected, 1)
            XCTAssertEqual(needed, 3)
            XCTAssertTrue(error.description.contains("--min-clients"), error.description)
        }
    }

    func testInitialParametersComeFromAClientWhenTheStrategyHasNone() async throws {
        final class Holder: ClientProxy {
            let id = "holder", partition: Int? = nil
            func getParameters(_ ins: GetParametersIns, timeout: Duration) async throws -> ParametersRes {
                ParametersRes(parameters: try model([3, 3, 3]))
            }
            func fit(_ ins: FitIns, timeout: Duration) async throws -> FitRes {
                FitRes(round: ins.round, parameters: ins.parameters, numExamples: 2)
            }
            func evaluate(_ ins: EvaluateIns, timeout: Duration) async throws -> EvaluateRes {
                EvaluateRes(round: ins.round, loss: 0, numExamples: 1)
            }
            func finish(roundsCompleted: Int, reason: String) async {}
            func reconnect(seconds: Int, reason: String) async {}
        }
        let m = InMemoryClientManager()
        _ = m.register(Holder())
        let strategy = FedAvg(fractionEvaluate: 0, minFitClients: 1, minAvailableClients: 1)
        let summary = try await Server(clientManager: m, strategy: strategy).fit(numRounds: 1, timeout: .seconds(30))
        XCTAssertEqual(summary.parameters.values, [3, 3, 3])
    }
}

/// A gate the "sleeper" client waits on, ignoring cancellation; opened after the test so its abandoned task ends.
let hangerGate = Gate()

final class Gate: Sendable {
    private let state = Mutex<(open: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))
    func wait() async {
        await withCheckedContinuation { c in
            let resumeNow = state.withLock { s -> Bool in
                if s.open { return true }
                s.waiters.append(c)
                return false
            }
            if resumeNow { c.resume() }
        }
    }
    func open() {
        let ws = state.withLock { s in
            s.open = true
            defer { s.waiters = [] }
            return s.waiters
        }
        for w in ws { w.resume() }
    }
}

import Synchronization
