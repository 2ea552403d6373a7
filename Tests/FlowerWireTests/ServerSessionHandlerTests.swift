// The server's session handler in an EmbeddedChannel (frame decoder → ServerSessionHandler, as
// WireServer builds each connection's pipeline, without a socket): the handshake, one outstanding
// call (FlowerCore's `OutstandingCall`, driven by the handler), the call deadline on the event
// loop's timer (advanced by hand), the last instruction, an abort, and the refusals.
import FlowerCore
import FlowerTLS
@testable import FlowerWire
@testable import FlowerWireCodec
import Logging
import NIOCore
import NIOEmbedded
import Testing

/// One server connection without a socket.
final class EmbeddedSession {
    let channel: EmbeddedChannel
    let manager: TestManager
    let server: WireServer
    let policy: FramePolicy
    let handler: ServerSessionHandler

    init(_ config: WireServerConfig = WireServerConfig(), manager: TestManager = TestManager()) throws {
        self.manager = manager
        server = WireServer(config: config, manager: manager, logger: Logger(label: "embedded-session"))
        policy = FramePolicy(limit: min(helloFrameLimit, config.maxFrameBytes))
        policy.slots = server.slots
        handler = ServerSessionHandler(server: server, policy: policy, peer: "peer:1", address: "peer", sessionID: "s-1")
        channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(FrameToMessageDecoder(policy: policy)))
        try channel.pipeline.syncOperations.addHandler(handler)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
    }

    /// The next message the server wrote, if any.
    func sent() throws -> ServerMessage? {
        guard let buffer = try channel.readOutbound(as: ByteBuffer.self) else { return nil }
        let frame = try #require(try ReceivedFrame.parse(buffer, limit: 1 << 20), "not one whole frame")
        return try frame.serverMessage(limit: 1 << 20)
    }

    func challenge() throws -> Challenge {
        guard case .challenge(let c)? = try sent() else { throw WireError.unexpectedMessage(got: "another message", expected: "Challenge") }
        return c
    }

    func receive(_ message: ClientMessage) throws {
        try channel.writeInbound(channel.allocator.buffer(bytes: WireEncoder.frame(message)))
    }

    func hello(_ id: String = "c1", version: UInt32 = flwrProtocolVersion, proof: [UInt8] = []) -> ClientMessage {
        .hello(Hello(protocolVersion: version, clientID: id, partition: nil, acceptsZlib: false, authProof: proof,
                     agent: "embedded", maxFrameBytes: 0))
    }

    /// Challenge, Hello as `id`, Welcome.
    func join(_ id: String = "c1") throws {
        _ = try challenge()
        try receive(hello(id))
        guard case .welcome(let w)? = try sent() else { throw WireError.unexpectedMessage(got: "another message", expected: "Welcome") }
        #expect(w.sessionID == "s-1")
    }

    /// Starts a call (as `WireClientProxy.call` does on the event loop) and records its outcome.
    func call(_ message: ServerMessage, expect: FlowerWire.Expectation, timeout: Duration) throws -> CallOutcome<ReceivedFrame> {
        let outcome = CallOutcome<ReceivedFrame>()
        handler.startCall(try WireEncoder.frameBuffer(message, allocator: channel.allocator), expect: expect, timeout: timeout) {
            outcome.complete($0)
        }
        return outcome
    }

    /// Sends the session's last instruction (as `WireClientProxy.finish` does) and records whether it went out.
    func sendLast(_ message: ServerMessage) throws -> CallOutcome<Void> {
        let outcome = CallOutcome<Void>()
        let promise = channel.eventLoop.makePromise(of: Void.self)
        promise.futureResult.whenComplete { outcome.complete($0) }
        handler.sendLast(try WireEncoder.frameBuffer(message, allocator: channel.allocator), promise: promise)
        return outcome
    }

    var proxy: WireClientProxy? { manager.proxy("c1") as? WireClientProxy }
}

/// What became of a call. Completed on the embedded event loop, which runs on the test's own
/// thread (EmbeddedEventLoop checks that), and read there: no other thread touches it.
final class CallOutcome<Value>: @unchecked Sendable {
    private(set) var result: Result<Value, any Error>?
    /// How many times it was completed (exactly once is right).
    private(set) var completions = 0
    func complete(_ r: Result<Value, any Error>) {
        result = r
        completions += 1
    }
    var error: WireError? {
        if case .failure(let e)? = result { return e as? WireError }
        return nil
    }
}

@Suite struct ServerSessionHandlerTests {
    let params: Parameters

    init() throws { params = try testModel(count: 20, seed: 3) }

    @Test func handshakeSendsChallengeThenWelcomesAndRegisters() throws {
        let s = try EmbeddedSession(WireServerConfig(maxFrameBytes: 1 << 20))
        let c = try s.challenge()
        #expect(c.protocolVersion == flwrProtocolVersion)
        #expect(c.nonce.count == 32)
        #expect(!c.authRequired)
        #expect(c.maxFrameBytes == 1 << 20)
        #expect(s.policy.limit == helloFrameLimit, "before the Hello only a Hello-sized frame is accepted")
        try s.receive(s.hello())
        guard case .welcome(let w)? = try s.sent() else { Issue.record("no Welcome"); return }
        #expect(w.sessionID == "s-1")
        #expect(!w.zlib)
        #expect(s.manager.proxy("c1") != nil)
        #expect(s.policy.limit == idleFrameLimit, "between calls only a Goodbye-sized frame is accepted")
        #expect(s.policy.stateName == "between calls")
        #expect(s.channel.isActive)
    }

    /// A call sends its instruction, raises the frame limit to --max-frame-mb, refuses a second
    /// call while it waits, and completes with the answer; reading pauses until the answer is
    /// consumed, after which the next call may start.
    @Test func oneOutstandingCallAtATime() throws {
        let s = try EmbeddedSession(WireServerConfig(maxFrameBytes: 1 << 20))
        try s.join()
        let first = try s.call(.fit(FitIns(round: 1, parameters: params)), expect: .fitRes(round: 1), timeout: .seconds(30))
        guard case .fit(let ins)? = try s.sent() else { Issue.record("no FitIns sent"); return }
        #expect(ins.round == 1)
        #expect(s.policy.limit == 1 << 20)
        #expect(s.policy.stateName == "in a call")

        let second = try s.call(.evaluate(EvaluateIns(round: 1, parameters: params)), expect: .evaluateRes(round: 1), timeout: .seconds(30))
        guard case .notReady(let why)? = second.error else { Issue.record("second call: \(String(describing: second.result))"); return }
        #expect(why.contains("still answering an earlier call"), "\(why)")
        #expect(try s.sent() == nil, "the refused call sent nothing")
        #expect(first.result == nil, "the first call is still waiting")

        try s.receive(.fitRes(FitRes(round: 1, parameters: params, numExamples: 10)))
        #expect(first.completions == 1)
        guard case .success(let frame)? = first.result else { Issue.record("first call: \(String(describing: first.result))"); return }
        guard case .fitRes(let res) = try frame.clientMessage(limit: 1 << 20) else { Issue.record("not a FitRes"); return }
        #expect(res.numExamples == 10)
        #expect(s.policy.readingPaused, "no reads until the caller took the answer")
        s.handler.consumed()
        #expect(!s.policy.readingPaused)
        #expect(s.policy.limit == idleFrameLimit)

        let third = try s.call(.evaluate(EvaluateIns(round: 1, parameters: params)), expect: .evaluateRes(round: 1), timeout: .seconds(30))
        guard case .evaluate? = try s.sent() else { Issue.record("the next call sent nothing"); return }
        #expect(third.result == nil)
        #expect(s.channel.isActive)
    }

    /// The deadline runs on the event loop's timer: nothing happens before it, and at it the call
    /// fails with a timeout naming what it waited for, the connection closes and the client leaves.
    @Test func callDeadlineOnTheEventLoopTimer() throws {
        let s = try EmbeddedSession()
        try s.join()
        let call = try s.call(.fit(FitIns(round: 4, parameters: params)), expect: .fitRes(round: 4), timeout: .seconds(5))
        _ = try s.sent()
        s.channel.embeddedEventLoop.advanceTime(by: .milliseconds(4_999))
        #expect(call.result == nil)
        #expect(s.channel.isActive)
        s.channel.embeddedEventLoop.advanceTime(by: .milliseconds(1))
        #expect(call.error == .timeout(operation: "FitRes for round 4 from c1", seconds: 5))
        #expect(call.completions == 1)
        #expect(!s.channel.isActive)
        #expect(s.manager.count == 0)
    }

    /// An answer in time cancels the deadline: advancing past it afterwards changes nothing.
    @Test func answerInTimeCancelsTheDeadline() throws {
        let s = try EmbeddedSession()
        try s.join()
        let call = try s.call(.fit(FitIns(round: 2, parameters: params)), expect: .fitRes(round: 2), timeout: .seconds(5))
        _ = try s.sent()
        try s.receive(.fitRes(FitRes(round: 2, parameters: params, numExamples: 1)))
        s.handler.consumed()
        s.channel.embeddedEventLoop.advanceTime(by: .seconds(60))
        #expect(call.completions == 1)
        guard case .success? = call.result else { Issue.record("\(String(describing: call.result))"); return }
        #expect(s.channel.isActive)
        #expect(s.manager.count == 1)
    }

    /// The last instruction (Finish) expects no answer and goes out only between calls: refused
    /// while a call waits, sent once it is answered; then the session is over: the client is
    /// unregistered, its proxy disconnected, and a further call is refused.
    @Test func finishOnlyBetweenCalls() throws {
        let s = try EmbeddedSession()
        try s.join()
        let call = try s.call(.fit(FitIns(round: 1, parameters: params)), expect: .fitRes(round: 1), timeout: .seconds(30))
        _ = try s.sent()
        let early = try s.sendLast(.finish(roundsCompleted: 1, reason: "done"))
        guard case .notReady(let why)? = early.error else { Issue.record("Finish during a call: \(String(describing: early.result))"); return }
        #expect(why.contains("still answering an earlier call"), "\(why)")
        #expect(try s.sent() == nil, "nothing sent while the call waits")
        try s.receive(.fitRes(FitRes(round: 1, parameters: params, numExamples: 1)))
        s.handler.consumed()
        #expect(call.completions == 1)

        let proxy = try #require(s.proxy)
        let finish = try s.sendLast(.finish(roundsCompleted: 1, reason: "done"))
        guard case .finish(let rounds, let reason, _)? = try s.sent() else { Issue.record("no Finish sent"); return }
        #expect(rounds == 1 && reason == "done")
        guard case .success? = finish.result else { Issue.record("Finish: \(String(describing: finish.result))"); return }
        #expect(s.manager.count == 0)
        #expect(!proxy.isConnected)
        let after = try s.call(.evaluate(EvaluateIns(round: 1, parameters: params)), expect: .evaluateRes(round: 1), timeout: .seconds(30))
        guard case .connectionClosed? = after.error else { Issue.record("a call after Finish: \(String(describing: after.result))"); return }
    }

    /// The proxy aborts a waiting call (a bad answer, a cancelled caller): the call fails at once
    /// with why, the connection closes, and the deadline no longer matters.
    @Test func abortFailsTheWaitingCall() throws {
        let s = try EmbeddedSession()
        try s.join()
        let proxy = try #require(s.proxy)
        let call = try s.call(.fit(FitIns(round: 3, parameters: params)), expect: .fitRes(round: 3), timeout: .seconds(5))
        _ = try s.sent()
        proxy.abort(reason: "the call was cancelled")
        #expect(call.error == .connectionClosed("the server (the call was cancelled)"))
        s.channel.embeddedEventLoop.run()
        #expect(!s.channel.isActive)
        #expect(s.manager.count == 0)
        s.channel.embeddedEventLoop.advanceTime(by: .seconds(10))
        #expect(call.completions == 1, "the deadline resumed nothing more")
        #expect(!proxy.isConnected)
    }

    /// No Hello within the handshake deadline: a PROTOCOL_ERROR Refusal, then the close.
    @Test func handshakeDeadline() throws {
        let s = try EmbeddedSession(WireServerConfig(handshakeTimeout: .seconds(3)))
        _ = try s.challenge()
        s.channel.embeddedEventLoop.advanceTime(by: .seconds(3))
        guard case .refusal(let r)? = try s.sent() else { Issue.record("no Refusal"); return }
        #expect(r.reason == .protocolError)
        #expect(r.message.contains("no complete Hello"), "\(r.message)")
        s.channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(!s.channel.isActive)
        #expect(s.manager.count == 0)
    }

    /// A frame other than Goodbye between calls closes the connection; the client is unregistered.
    @Test func messageWithoutAnInstructionCloses() throws {
        let s = try EmbeddedSession()
        try s.join()
        try s.receive(.evaluateRes(EvaluateRes(round: 1, loss: 0, numExamples: 1)))
        #expect(!s.channel.isActive)
        #expect(s.manager.count == 0)
    }

    enum Refused: String, CaseIterable, Sendable {
        case versionMismatch, emptyID, wrongProof, missingProof, notAHello, duplicate, serverFull, oversizedHello
    }

    /// Every way a Hello is refused: the Refusal's reason and the start of its message, then the
    /// close; nothing is registered.
    @Test(arguments: Refused.allCases)
    func refusals(_ kind: Refused) throws {
        var config = WireServerConfig()
        let manager = TestManager()
        switch kind {
        case .wrongProof, .missingProof:
            config.authToken = "secret"
            config.mac = CryptoHandshakeMAC()
        case .serverFull:
            config.maxClients = 1
        default:
            break
        }
        if kind == .duplicate || kind == .serverFull {
            let other = try EmbeddedSession(config, manager: manager)
            try other.join(kind == .duplicate ? "c1" : "c0")
        }
        let s = try EmbeddedSession(config, manager: manager)
        let c = try s.challenge()
        let before = manager.count
        let expected: (RefusalReason, String)
        switch kind {
        case .versionMismatch:
            try s.receive(s.hello(version: 99))
            expected = (.versionMismatch, "client speaks protocol version 99")
        case .emptyID:
            try s.receive(s.hello(""))
            expected = (.protocolError, "empty client_id")
        case .wrongProof:
            try s.receive(s.hello(proof: CryptoHandshakeMAC().proof(token: "other", nonce: c.nonce, clientID: "c1")))
            expected = (.badCredentials, "authentication proof does not match")
        case .missingProof:
            try s.receive(s.hello())
            expected = (.badCredentials, "the server requires authentication")
        case .notAHello:
            try s.receive(.goodbye(reason: "bye"))
            expected = (.protocolError, "unexpected Goodbye where Hello was expected")
        case .duplicate:
            try s.receive(s.hello("c1"))
            expected = (.duplicateIdentity, "")
        case .serverFull:
            try s.receive(s.hello("c1"))
            expected = (.serverFull, "")
        case .oversizedHello:
            // Only the header: a frame announced past the pre-handshake limit is refused unread.
            try s.channel.writeInbound(s.channel.allocator.buffer(bytes: [0, 0, 1, 0, 1]))
            expected = (.protocolError, "frame of 65537 bytes refused before the handshake")
        }
        guard case .refusal(let r)? = try s.sent() else { Issue.record("\(kind): no Refusal"); return }
        #expect(r.reason == expected.0, "\(kind): \(r.message)")
        #expect(expected.1.isEmpty || r.message.lowercased().contains(expected.1.lowercased()), "\(kind): \(r.message)")
        s.channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(!s.channel.isActive, "\(kind): still open")
        #expect(manager.count == before, "\(kind): registered anyway")
    }
}
