// Bad input against a real listening server: each case gets a clear error and a closed connection,
// and then a well-behaved client still completes fit + evaluate + finish on the same server.
import FlowerCore
@testable import FlowerWire
@testable import FlowerWireCodec
import FlowerZlib
import XCTest

final class WireServerTests: XCTestCase {
    var manager = TestManager()
    var server: WireServer?
    var port = 0

    override func setUp() async throws {
        manager = TestManager()
        let (s, p) = try await startServer(manager, handshake: .milliseconds(500))
        server = s
        port = p
    }

    override func tearDown() async throws {
        await server?.stop()
        XCTAssertEqual(server?.connectionCount, 0, "stop left connections open")
    }

    /// Connects, reads the Challenge, sends `bytes`, optionally closes; returns what the server sent back.
    func sendBeforeHello(_ bytes: [UInt8], thenClose: Bool = false) throws -> [ServerMessage] {
        let peer = try RawPeer(port: port)
        defer { peer.close() }
        _ = try peer.challenge()
        try peer.send(bytes)
        if thenClose {
            _ = Glibc.shutdown(peer.socket.fd, Int32(SHUT_WR))
        }
        return try peer.drainUntilClosed()
    }

    func assertProtocolRefusal(_ messages: [ServerMessage], _ fragment: String, line: UInt = #line) {
        guard case .refusal(let r)? = messages.last else { return XCTFail("expected a Refusal, got \(messages.map(\.kind))", line: line) }
        XCTAssertEqual(r.reason, .protocolError, line: line)
        XCTAssertTrue(r.message.contains(fragment), "\(r.message) lacks \(fragment)", line: line)
    }

    func testFrameLongerThanTheLimit() async throws {
        let header: [UInt8] = [0, 0x7f, 0xff, 0xff, 0xff]
        assertProtocolRefusal(try sendBeforeHello(header), "refused before the handshake: at most 65536 bytes")
        try await assertGoodExchange(manager, port: port)
    }

    func testTruncatedHeaderThenClose() async throws {
        let got = try sendBeforeHello([0, 0, 0], thenClose: true)
        assertProtocolRefusal(got, "mid-frame after 3 of 5 bytes")
        try await assertGoodExchange(manager, port: port)
    }

    func testConnectionClosedMidFrame() async throws {
        let got = try sendBeforeHello([0, 0, 0, 0, 100] + [UInt8](repeating: 1, count: 10), thenClose: true)
        assertProtocolRefusal(got, "after 15 of 105 bytes")
        try await assertGoodExchange(manager, port: port)
    }

    func testReservedFlagBits() async throws {
        assertProtocolRefusal(try sendBeforeHello([0x02, 0, 0, 0, 1, 0]), "reserved bits")
        try await assertGoodExchange(manager, port: port)
    }

    func testCorruptZlibPayload() async throws {
        assertProtocolRefusal(try sendBeforeHello(FrameEncoder.frame([0x78, 0x9c, 0xde, 0xad, 0xbe, 0xef], compressed: true)), "compressed")
        try await assertGoodExchange(manager, port: port)
    }

    func testZlibBomb() async throws {
        let bomb = try Zlib.compress([UInt8](repeating: 0, count: 8 << 20))
        // Before the handshake compression was never negotiated: refused without inflating.
        assertProtocolRefusal(try sendBeforeHello(FrameEncoder.frame(bomb, compressed: true)), "not negotiated")
        try await assertGoodExchange(manager, port: port)
    }

    func testBytesThatAreNotProtobuf() async throws {
        assertProtocolRefusal(try sendBeforeHello(FrameEncoder.frame([0xff, 0xff, 0xff, 0xff])), "do not parse")
        try await assertGoodExchange(manager, port: port)
    }

    func testWrongMessageKindInsteadOfHello() async throws {
        let fitRes = try WireEncoder.frame(.fitRes(FitRes(round: 1, parameters: Parameters(), numExamples: 1)))
        assertProtocolRefusal(try sendBeforeHello(fitRes), "unexpected FitRes where Hello")
        try await assertGoodExchange(manager, port: port)
    }

    func testWrongProtocolVersion() async throws {
        let peer = try RawPeer(port: port)
        defer { peer.close() }
        guard case .refusal(let r)? = try peer.handshake(id: "old", version: 99) else { return XCTFail("no refusal") }
        XCTAssertEqual(r.reason, .versionMismatch)
        XCTAssertTrue(r.message.contains("version 99"), r.message)
        XCTAssertNil(try peer.next(), "the server must close after a refusal")
        try await assertGoodExchange(manager, port: port)
    }

    func testSilentClientIsTimedOut() async throws {
        let peer = try RawPeer(port: port)
        defer { peer.close() }
        _ = try peer.challenge()
        assertProtocolRefusal(try peer.drainUntilClosed(), "timed out")
        try await assertGoodExchange(manager, port: port)
    }

    func testUnsolicitedMessageAfterWelcomeClosesTheConnection() async throws {
        let peer = try RawPeer(port: port)
        defer { peer.close() }
        guard case .welcome? = try peer.handshake(id: "chatty") else { return XCTFail("no welcome") }
        try await manager.wait { $0.proxy("chatty") != nil }
        try peer.send(WireEncoder.frame(.fitRes(FitRes(round: 1, parameters: Parameters(), numExamples: 1))))
        XCTAssertNil(try peer.next(), "server should close")
        try await manager.wait { $0.proxy("chatty") == nil }
        try await assertGoodExchange(manager, port: port)
    }

    /// A registered raw client answers a FitIns with `answer`; the proxy's fit must throw `check`.
    func answerFit(_ id: String, with answer: [UInt8], timeout: Duration = .seconds(10),
                   check: (WireError) -> Void) async throws {
        let peer = try RawPeer(port: port)
        defer { peer.close() }
        guard case .welcome? = try peer.handshake(id: id) else { return XCTFail("no welcome") }
        let proxy = try await manager.waitForProxy(id)
        let responder = Task.detached {
            guard case .fit? = try peer.next() else { return }
            if !answer.isEmpty { try peer.send(answer) }
            _ = try? peer.drainUntilClosed()
        }
        do {
            _ = try await proxy.fit(FitIns(round: 1, parameters: try testModel(count: 10)), timeout: timeout)
            XCTFail("fit should have thrown")
        } catch let error as WireError {
            check(error)
        }
        try await responder.value
        try await manager.wait { $0.proxy(id) == nil }
        // A dead proxy throws at once.
        do {
            _ = try await proxy.fit(FitIns(round: 2, parameters: Parameters()), timeout: .seconds(10))
            XCTFail("a call on a closed connection should throw")
        } catch WireError.notReady(let why) {
            XCTAssertTrue(why.contains("disconnected"), why)
        }
    }

    func testAnswerWithWrongKindOrRound() async throws {
        let eval = try WireEncoder.frame(.evaluateRes(EvaluateRes(round: 1, loss: 0, numExamples: 1)))
        try await answerFit("wrongkind", with: eval) { error in
            XCTAssertEqual(error, .unexpectedMessage(got: "EvaluateRes for round 1", expected: "FitRes for round 1"))
        }
        let late = try WireEncoder.frame(.fitRes(FitRes(round: 9, parameters: Parameters(), numExamples: 1)))
        try await answerFit("wronground", with: late) { error in
            XCTAssertEqual(error, .unexpectedMessage(got: "FitRes for round 9", expected: "FitRes for round 1"))
        }
        try await assertGoodExchange(manager, port: port)
    }

    func testTensorWhoseDataDisagreesWithItsShape() async throws {
        let bad = FrameEncoder.frame(PB.bytes(3, PB.field(2, 1) + PB.bytes(3, PB.bytes(1, PB.tensor(name: "w", shape: [4], data: [0, 0, 0, 0])))))
        try await answerFit("badtensor", with: bad) { error in
            guard case .badParameters(let why) = error else { return XCTFail("got \(error)") }
            XCTAssertTrue(why.contains("needs 4 float32"), why)
        }
        try await assertGoodExchange(manager, port: port)
    }

    func testAnswerLargerThanTheFrameLimit() async throws {
        try await answerFit("huge", with: [0, 0x00, 0x20, 0x00, 0x01]) { error in
            XCTAssertEqual(error, .frameTooLarge(length: (2 << 20) + 1, limit: 1 << 20))
        }
        try await assertGoodExchange(manager, port: port)
    }

    func testClientThatNeverAnswersTimesOut() async throws {
        try await answerFit("mute", with: [], timeout: .milliseconds(300)) { error in
            guard case .timeout(let what, let seconds) = error else { return XCTFail("got \(error)") }
            XCTAssertTrue(what.contains("FitRes for round 1 from mute"), what)
            XCTAssertEqual(seconds, 0.3, accuracy: 1e-9)
        }
        try await assertGoodExchange(manager, port: port)
    }

    func testProbeReadsTheChallengeAndHangsUp() async throws {
        let summary = try await WireProbe.check(host: "127.0.0.1", port: port, timeout: .seconds(5))
        XCTAssertTrue(summary.contains("protocol \(flwrProtocolVersion) (compatible)"), summary)
        XCTAssertTrue(summary.contains("authentication off"), summary)
        XCTAssertTrue(summary.contains("max frame 1 MiB"), summary)
        try await assertGoodExchange(manager, port: port)
    }

    func testByteCountersSeeBothDirections() async throws {
        try await assertGoodExchange(manager, port: port)
        let (inBytes, outBytes) = (server?.bytesIn ?? 0, server?.bytesOut ?? 0)
        // FitIns and EvaluateIns each carry 1000 floats out; FitRes carries 1000 back.
        XCTAssertGreaterThan(outBytes, 8_000)
        XCTAssertGreaterThan(inBytes, 4_000)
        XCTAssertLessThan(inBytes, outBytes)
    }
}
