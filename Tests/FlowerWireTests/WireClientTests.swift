// The client transport against a real server: retry until the server is up, refusals as typed
// errors, authentication, Reconnect, cancellation (Goodbye) and 200 simultaneous clients.
import FlowerCore
@testable import FlowerWire
@testable import FlowerWireCodec
import Synchronization
import TestSupport
import XCTest

final class WireClientTests: XCTestCase {
    func testBackoffGrowsCapsAndJitters() {
        var plain = RetryPolicy(initialDelay: .milliseconds(500), maxDelay: .seconds(10), multiplier: 2, jitter: 0).backoff(seed: 1)
        let delays = (0 ..< 30).map { _ in plain.nextDelay() }
        XCTAssertEqual(delays[0], .milliseconds(500))
        XCTAssertEqual(delays[2], .seconds(2))
        XCTAssertEqual(delays[29], .seconds(10))
        // Half of each delay is drawn at random: at the cap every delay lies in [5 s, 10 s], and
        // the draws differ (clients do not knock in lockstep).
        var jittered = RetryPolicy(initialDelay: .milliseconds(500), maxDelay: .seconds(10), multiplier: 2, jitter: 0.5).backoff(seed: 1)
        let capped = (0 ..< 30).map { _ in jittered.nextDelay() }.suffix(20)
        XCTAssertTrue(capped.allSatisfy { $0 >= .seconds(5) && $0 <= .seconds(10) }, "\(capped)")
        XCTAssertGreaterThan(Set(capped).count, 10)
    }

    func testClientWaitsForALateServer() async throws {
        // Reserve a port, close it, start the client first, then the server on that port.
        let port = try RawSocket.freePort()
        let manager = TestManager()
        var config = clientConfig(port, id: "early", attempts: 200)
        config.retry = RetryPolicy(initialDelay: .milliseconds(10), maxDelay: .milliseconds(50), maxAttempts: 200, seed: 9)
        let log = LogCapture()
        let run = Task { try await WireClient.run(config: config, client: PlusOneClient(), logger: log.logger) }
        defer { run.cancel() }
        // The client has tried, found nobody listening and is retrying: only then the server starts.
        let refused = await log.waitFor("not available", seconds: 30)
        XCTAssertTrue(refused, "the client never reported the missing server:\n\(log.text)")
        let server = WireServer(config: WireServerConfig(host: "127.0.0.1", port: port, maxFrameBytes: 1 << 20),
                                manager: manager, logger: quietLogger)
        _ = try await server.start()
        let proxy = try await manager.waitForProxy("early")
        await proxy.finish(roundsCompleted: 1, reason: "done")
        let rounds = try await run.value
        XCTAssertEqual(rounds, 1)
        await server.stop()
    }

    /// A server may write the Welcome and its first instructions in one segment (the round loop
    /// starts as soon as the last client registers): the client must take them in order, not
    /// keep only the last frame of a read. Here a plain POSIX server sends Welcome,
    /// GetParametersIns and Finish with one send().
    func testFramesArrivingInOneReadAreTakenInOrder() async throws {
        let listener = try RawListener()
        let server = Task.detached { () throws -> ClientMessage? in
            let peer = try listener.accept()
            defer { peer.close() }
            try peer.writeAll(WireEncoder.frame(.challenge(Challenge(protocolVersion: flwrProtocolVersion, nonce: Array(repeating: 7, count: 32),
                                                                       authRequired: false, maxFrameBytes: 1 << 20))))
            guard case .hello(let hello)? = try peer.nextClientMessage() else { throw WireError.unexpectedMessage(got: "?", expected: "Hello") }
            XCTAssertEqual(hello.clientID, "burst")
            try peer.writeAll(WireEncoder.frame(.welcome(Welcome(protocolVersion: flwrProtocolVersion, sessionID: "s1", zlib: false)))
                + WireEncoder.frame(.getParameters(GetParametersIns()))
                + WireEncoder.frame(.finish(roundsCompleted: 4, reason: "done")))
            return try peer.nextClientMessage()
        }
        let rounds = try await WireClient.run(config: clientConfig(listener.port, id: "burst", attempts: 1), client: PlusOneClient(), logger: quietLogger)
        XCTAssertEqual(rounds, 4, "the Finish queued behind the GetParametersIns was lost")
        guard case .parametersRes(let res)? = try await server.value else { return XCTFail("no ParametersRes for the GetParametersIns sent with the Welcome") }
        XCTAssertEqual(res.parameters.values, try testModel(count: 3, seed: 1).values)
    }

    /// A client that fails keeps its session: a throwing fit is answered with fitFailed carrying
    /// the error, a non-ok evaluation with its status and no payload, and the next instruction is
    /// served (FlowerCore's `ClientDispatcher`, framed by the wire).
    func testFailingClientAnswersWithFailureStatusesAndStays() async throws {
        struct OutOfMemory: Error, CustomStringConvertible { var description: String { "out of memory" } }
        struct Failing: Client {
            func getParameters(_ ins: GetParametersIns) async throws -> ParametersRes { ParametersRes(parameters: try testModel(count: 3, seed: 1)) }
            func fit(_ ins: FitIns) async throws -> FitRes { throw OutOfMemory() }
            func evaluate(_ ins: EvaluateIns) async throws -> EvaluateRes {
                EvaluateRes(status: Status(code: .evaluateFailed, message: "no test split"), round: ins.round, loss: 0.5, numExamples: 7)
            }
        }
        let listener = try RawListener()
        let model = try testModel(count: 20, seed: 3)
        let server = Task.detached { () throws -> [ClientMessage?] in
            let peer = try listener.accept()
            defer { peer.close() }
            try peer.writeAll(WireEncoder.frame(.challenge(Challenge(protocolVersion: flwrProtocolVersion, nonce: Array(repeating: 7, count: 32),
                                                                       authRequired: false, maxFrameBytes: 1 << 20))))
            guard case .hello? = try peer.nextClientMessage() else { throw WireError.unexpectedMessage(got: "?", expected: "Hello") }
            try peer.writeAll(WireEncoder.frame(.welcome(Welcome(protocolVersion: flwrProtocolVersion, sessionID: "s1", zlib: false))))
            var replies: [ClientMessage?] = []
            for ins in [ServerMessage.fit(FitIns(round: 2, parameters: model)), .evaluate(EvaluateIns(round: 2, parameters: model)),
                        .getParameters(GetParametersIns())] {
                try peer.writeAll(WireEncoder.frame(ins))
                replies.append(try peer.nextClientMessage())
            }
            try peer.writeAll(WireEncoder.frame(.finish(roundsCompleted: 2, reason: "done")))
            return replies
        }
        let rounds = try await WireClient.run(config: clientConfig(listener.port, id: "failing", attempts: 1), client: Failing(), logger: quietLogger)
        XCTAssertEqual(rounds, 2)
        let replies = try await server.value
        guard replies.count == 3, case .fitRes(let fit)? = replies[0], case .evaluateRes(let eval)? = replies[1],
              case .parametersRes(let params)? = replies[2] else { return XCTFail("replies: \(replies)") }
        XCTAssertEqual(fit.status, Status(code: .fitFailed, message: "out of memory"))
        XCTAssertEqual(fit.round, 2)
        XCTAssertTrue(fit.parameters.values.isEmpty)
        XCTAssertEqual(fit.numExamples, 0)
        XCTAssertEqual(eval.status, Status(code: .evaluateFailed, message: "no test split"))
        XCTAssertEqual(eval.round, 2)
        XCTAssertTrue(eval.loss.isNaN, "a failed evaluation carries no loss")
        XCTAssertEqual(eval.numExamples, 0)
        XCTAssertEqual(params.status, .ok)
        XCTAssertEqual(params.parameters.values, try testModel(count: 3, seed: 1).values)
    }

    func testGivesUpWithUnreachableAfterItsAttempts() async throws {
        let port = try RawSocket.freePort()
        do {
            _ = try await WireClient.run(config: clientConfig(port, id: "x", attempts: 3), client: PlusOneClient(), logger: quietLogger)
            XCTFail("should give up")
        } catch WireError.unreachable(_, let p, let attempts, let last) {
            XCTAssertEqual(p, port)
            XCTAssertEqual(attempts, 3)
            XCTAssertTrue(last.contains("connect"), last)
        }
    }

    func assertRefused(_ port: Int, id: String, token: String? = nil, _ reason: RefusalReason, _ fragment: String,
                       line: UInt = #line) async {
        do {
            _ = try await WireClient.run(config: clientConfig(port, id: id, token: token), client: PlusOneClient(), logger: quietLogger)
            XCTFail("should be refused", line: line)
        } catch WireError.refused(let r, let message) {
            XCTAssertEqual(r, reason, line: line)
            XCTAssertTrue(message.contains(fragment), "\(message) lacks \(fragment)", line: line)
        } catch {
            XCTFail("got \(error)", line: line)
        }
    }

    func testAuthenticationWithTheRightTokenOnly() async throws {
        let manager = TestManager()
        let (server, port) = try await startServer(manager, token: "s3cret")
        await assertRefused(port, id: "a", token: "wrong", .badCredentials, "does not match")
        await assertRefused(port, id: "b", token: nil, .badCredentials, "requires authentication")
        let probe = try await WireProbe.check(host: "127.0.0.1", port: port, timeout: .seconds(5))
        XCTAssertTrue(probe.contains("authentication required"), probe)
        try await assertGoodExchange(manager, port: port, token: "s3cret")
        await server.stop()
    }

    func testDuplicateIdentityAndServerFullAreRefused() async throws {
        // The manager's own limit (1) and duplicate check, then the server's --max-clients (0).
        let manager = TestManager(maxClients: 1)
        let (server, port) = try await startServer(manager)
        let (fullServer, fullPort) = try await startServer(TestManager(), maxClients: 0)
        await assertRefused(fullPort, id: "any", .serverFull, "maximum of 0")
        await fullServer.stop()
        let first = Task { try await WireClient.run(config: clientConfig(port, id: "dup"), client: PlusOneClient(), logger: quietLogger) }
        defer { first.cancel() }
        let proxy = try await manager.waitForProxy("dup")
        await assertRefused(port, id: "dup", .duplicateIdentity, "already connected")
        await assertRefused(port, id: "other", .serverFull, "maximum of 1")
        await proxy.finish(roundsCompleted: 0, reason: "done")
        let firstRounds = try await first.value
        XCTAssertEqual(firstRounds, 0)
        await server.stop()
    }

    func testReconnectInstructionBringsTheClientBack() async throws {
        let manager = TestManager()
        let (server, port) = try await startServer(manager)
        let run = Task { try await WireClient.run(config: clientConfig(port, id: "bounce"), client: PlusOneClient(), logger: quietLogger) }
        defer { run.cancel() }
        let first = try await manager.waitForProxy("bounce")
        await first.reconnect(seconds: 0, reason: "rebalancing")
        try await manager.wait { ($0.proxy("bounce") as? WireClientProxy).map { $0 !== first } ?? false }
        let second = try await manager.waitForProxy("bounce")
        let res = try await second.getParameters(GetParametersIns(), timeout: .seconds(10))
        XCTAssertEqual(res.parameters, try testModel(count: 3, seed: 1))
        await second.finish(roundsCompleted: 2, reason: "done")
        let rounds = try await run.value
        XCTAssertEqual(rounds, 2)
        await server.stop()
    }

    func testCancelledClientSaysGoodbye() async throws {
        let manager = TestManager()
        let (server, port) = try await startServer(manager)
        let run = Task { try await WireClient.run(config: clientConfig(port, id: "leaver"), client: PlusOneClient(), logger: quietLogger) }
        _ = try await manager.waitForProxy("leaver")
        run.cancel()
        do {
            _ = try await run.value
            XCTFail("a cancelled client should throw")
        } catch is CancellationError {}
        try await manager.wait { $0.proxy("leaver") == nil }
        await server.stop()
    }

    func test200SimultaneousClients() async throws {
        let manager = TestManager()
        let (server, port) = try await startServer(manager, handshake: .seconds(30))
        let n = 200
        var runs: [Task<Int, Error>] = []
        for i in 0 ..< n {
            var config = clientConfig(port, id: "c\(i)", attempts: 50)
            config.connectTimeout = .seconds(30)
            runs.append(Task { try await WireClient.run(config: config, client: PlusOneClient(), logger: quietLogger) })
        }
        defer { runs.forEach { $0.cancel() } }
        try await manager.wait(seconds: 60) { $0.count == n }
        let model = try testModel(count: 100)
        let sums = try await withThrowingTaskGroup(of: Float.self) { group in
            for i in 0 ..< n {
                guard let proxy = manager.proxy("c\(i)") else { throw WireError.notReady("c\(i) missing") }
                group.addTask { try await proxy.fit(FitIns(round: 1, parameters: model), timeout: .seconds(60)).parameters.values.reduce(0, +) }
            }
            return try await group.reduce(into: [Float]()) { $0.append($1) }
        }
        let expected = model.values.reduce(0, +) + Float(model.count)
        XCTAssertEqual(sums.count, n)
        for s in sums { XCTAssertEqual(s, expected, accuracy: 1e-2) }
        for i in 0 ..< n { await manager.proxy("c\(i)")?.finish(roundsCompleted: 1, reason: "done") }
        for run in runs {
            let rounds = try await run.value
            XCTAssertEqual(rounds, 1)
        }
        await server.stop()
        XCTAssertEqual(server.connectionCount, 0)
    }
}
