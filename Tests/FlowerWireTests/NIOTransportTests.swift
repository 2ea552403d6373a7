// The SwiftNIO transport's own promises, against a real listening server: frame admission by
// connection state, encode-once broadcast, K payload slots, identity replacement, the
// pre-authentication budget with SERVER_FULL, and a 20,000-connection burst.
import FlowerCore
import FlowerTLS
@testable import FlowerWire
@testable import FlowerWireCodec
import Foundation
import Logging
import Synchronization
import TestSupport
import XCTest

/// Collects log lines so tests can check what an operator would read.
final class CollectingLog: Sendable {
    let lines = Mutex<[String]>([])

    var logger: Logger {
        var l = Logger(label: "flwr.wire.test.collect") { _ in Handler(sink: self) }
        l.logLevel = .info
        return l
    }

    func count(containing s: String) -> Int { lines.withLock { $0.filter { $0.contains(s) }.count } }

    struct Handler: LogHandler {
        let sink: CollectingLog
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .info
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String,
                 file: String, function: String, line: UInt) {
            sink.lines.withLock { $0.append("\(level): \(message)") }
        }
    }
}

/// Resident memory of this process in MB (/proc/self/statm).
func residentMegabytes() -> Double {
    guard let s = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let fields = s.split(separator: " ")
    guard fields.count > 1, let pages = Double(fields[1]) else { return 0 }
    return pages * Double(sysconf(Int32(_SC_PAGESIZE))) / 1_048_576
}

final class NIOTransportTests: XCTestCase {
    func server(_ manager: TestManager, log: Logger = quietLogger, _ edit: (inout WireServerConfig) -> Void = { _ in }) async throws -> (WireServer, Int) {
        var config = WireServerConfig(host: "127.0.0.1", port: 0, maxFrameBytes: 256 << 20, handshakeTimeout: .seconds(5))
        config.raiseDescriptorLimit = false
        config.mac = CryptoHandshakeMAC()
        edit(&config)
        let server = WireServer(config: config, manager: manager, logger: log)
        return (server, try await server.start())
    }

    func testIdleConnectionAnnouncingA200MBFrameIsClosedBeforeBuffering() async throws {
        let manager = TestManager()
        let (server, port) = try await server(manager)
        let peer = try RawPeer(port: port)
        defer { peer.close() }
        guard case .welcome? = try peer.handshake(id: "idle") else { return XCTFail("no welcome") }
        try await manager.wait { $0.proxy("idle") != nil }
        let before = residentMegabytes()
        // 200 MiB announced while no call is pending (the server's --max-frame-mb is 256), then
        // 1 MiB of it sent: refused at the header, nothing buffered, the connection closed.
        try peer.send([0, 0x0C, 0x80, 0x00, 0x00])
        try? peer.send([UInt8](repeating: 7, count: 1 << 20))
        XCTAssertNil(try peer.next(seconds: 10), "the server must close the idle connection")
        try await manager.wait { $0.proxy("idle") == nil }
        XCTAssertLessThan(residentMegabytes() - before, 100, "the refused frame must not have been buffered")
        try await assertGoodExchange(manager, port: port)
        await server.stop()
    }

    func testCompressedFrameWithoutNegotiationIsRefused() async throws {
        let manager = TestManager()
        let (server, port) = try await server(manager)
        let peer = try RawPeer(port: port)
        defer { peer.close() }
        guard case .welcome(let w)? = try peer.handshake(id: "plain") else { return XCTFail("no welcome") }
        XCTAssertFalse(w.zlib, "the raw peer did not offer zlib")
        try await manager.wait { $0.proxy("plain") != nil }
        try peer.send(FrameEncoder.frame([0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01], compressed: true))
        XCTAssertNil(try peer.next(seconds: 10))
        try await manager.wait { $0.proxy("plain") == nil }
        await server.stop()
    }

    func testBroadcastFrameIsEncodedOnceForAllClients() async throws {
        let manager = TestManager()
        let (server, port) = try await server(manager)
        let n = 6
        let runs = (0 ..< n).map { i in
            Task { try await WireClient.run(config: clientConfig(port, id: "b\(i)"), client: PlusOneClient(), logger: quietLogger) }
        }
        defer { runs.forEach { $0.cancel() } }
        try await manager.wait { $0.count == n }
        let model = try testModel(count: 50_000)
        let ins = FitIns(round: 1, parameters: model)
        let proxies = (0 ..< n).compactMap { manager.proxy("b\($0)") }
        try await withThrowingTaskGroup(of: FitRes.self) { group in
            for p in proxies { group.addTask { try await p.fit(ins, timeout: .seconds(30)) } }
            for try await res in group { XCTAssertEqual(res.parameters.values, model.values.map { $0 + 1 }) }
        }
        let stats = server.broadcast.stats
        XCTAssertEqual(stats.built, 1, "one FitIns frame for \(n) clients")
        XCTAssertEqual(stats.reused, n - 1)
        for p in proxies { await p.finish(roundsCompleted: 1, reason: "done") }
        for r in runs { _ = try await r.value }
        await server.stop()
    }

    func testAtMostKLargeAnswersAreBufferedAtOnce() async throws {
        let manager = TestManager()
        let (server, port) = try await server(manager) { $0.maxBufferedPayloads = 1 }
        let n = 5
        let runs = (0 ..< n).map { i in
            Task { try await WireClient.run(config: clientConfig(port, id: "k\(i)"), client: PlusOneClient(), logger: quietLogger) }
        }
        defer { runs.forEach { $0.cancel() } }
        try await manager.wait { $0.count == n }
        let model = try testModel(count: 100_000)  // 400 KB answers: each needs a slot
        let proxies = (0 ..< n).compactMap { manager.proxy("k\($0)") }
        try await withThrowingTaskGroup(of: FitRes.self) { group in
            for p in proxies { group.addTask { try await p.fit(FitIns(round: 2, parameters: model), timeout: .seconds(30)) } }
            var answered = 0
            for try await res in group {
                XCTAssertEqual(res.parameters.values, model.values.map { $0 + 1 })
                answered += 1
            }
            XCTAssertEqual(answered, n)
        }
        XCTAssertEqual(server.peakBufferedPayloads, 1, "K = 1: one large answer buffered at a time")
        for p in proxies { await p.finish(roundsCompleted: 2, reason: "done") }
        for r in runs { _ = try await r.value }
        await server.stop()
    }

    func testAProvenIdentityReplacesItsHalfOpenSession() async throws {
        let manager = TestManager()
        let (server, port) = try await server(manager) { $0.authToken = "s3cret" }
        let stale = try RawPeer(port: port)  // handshakes, then goes silent (a crashed client's socket)
        defer { stale.close() }
        guard case .welcome? = try stale.handshake(id: "same", token: "s3cret") else { return XCTFail("no welcome") }
        let old = try await manager.waitForProxy("same")
        let run = Task { try await WireClient.run(config: clientConfig(port, id: "same", token: "s3cret"), client: PlusOneClient(), logger: quietLogger) }
        defer { run.cancel() }
        try await manager.wait { $0.proxy("same").map { $0 !== old } ?? false }
        XCTAssertNil(try stale.next(seconds: 10), "the replaced session is closed")
        guard let new = manager.proxy("same") else { return XCTFail("no new session") }
        let res = try await new.fit(FitIns(round: 1, parameters: try testModel()), timeout: .seconds(20))
        XCTAssertEqual(res.round, 1)
        await new.finish(roundsCompleted: 1, reason: "done")
        let rounds = try await run.value
        XCTAssertEqual(rounds, 1)
        await server.stop()
    }

    func testClientStaysConnectedLongAfterItsSendTimeout() async throws {
        let manager = TestManager()
        let (server, port) = try await server(manager)
        var config = clientConfig(port, id: "patient")
        config.sendTimeout = .seconds(1)
        let cfg = config
        let run = Task { try await WireClient.run(config: cfg, client: PlusOneClient(), logger: quietLogger) }
        defer { run.cancel() }
        let proxy = try await manager.waitForProxy("patient")
        _ = try await proxy.fit(FitIns(round: 1, parameters: try testModel()), timeout: .seconds(20))
        try await Task.sleep(for: .seconds(3))  // the behaviour under test: idle well past the 1 s send timeout
        XCTAssertTrue(manager.proxy("patient") === proxy, "the idle client must still hold its session")
        _ = try await proxy.fit(FitIns(round: 2, parameters: try testModel()), timeout: .seconds(20))
        await proxy.finish(roundsCompleted: 2, reason: "done")
        let rounds = try await run.value
        XCTAssertEqual(rounds, 2)
        await server.stop()
    }

    func testFailedFinishMakesTheClientFail() async throws {
        let manager = TestManager()
        let (server, port) = try await server(manager)
        let run = Task { try await WireClient.run(config: clientConfig(port, id: "f"), client: PlusOneClient(), logger: quietLogger) }
        let proxy = try await manager.waitForProxy("f")
        await proxy.finish(roundsCompleted: 2, reason: "server stopped: round 3 failed", failed: true)
        do {
            _ = try await run.value
            XCTFail("a failed federation must not look like success")
        } catch WireError.serverFailed(let rounds, let reason) {
            XCTAssertEqual(rounds, 2)
            XCTAssertTrue(reason.contains("round 3 failed"), reason)
        }
        await server.stop()
    }

    func testPreAuthenticationBudgetRefusesWithServerFullAndHandshakenClientsStillJoin() async throws {
        let manager = TestManager()
        let log = CollectingLog()
        let (server, port) = try await server(manager, log: log.logger) {
            $0.maxPendingHandshakes = 8
            $0.maxPendingHandshakesPerAddress = 4
        }
        // A handshaken client first: it must keep working while others flood the handshake budget.
        let run = Task { try await WireClient.run(config: clientConfig(port, id: "early"), client: PlusOneClient(), logger: quietLogger) }
        defer { run.cancel() }
        let early = try await manager.waitForProxy("early")
        let squatters = try (0 ..< 4).map { _ in try RawPeer(port: port) }
        for s in squatters { _ = try s.challenge() }
        let extra = try RawPeer(port: port)
        defer { extra.close() }
        guard case .refusal(let r)? = try extra.next(seconds: 10) else { return XCTFail("expected a SERVER_FULL refusal") }
        XCTAssertEqual(r.reason, .serverFull)
        XCTAssertTrue(r.message.contains("already handshaking"), r.message)
        XCTAssertNil(try extra.next(seconds: 10), "closed after the refusal")
        let res = try await early.fit(FitIns(round: 1, parameters: try testModel()), timeout: .seconds(20))
        XCTAssertEqual(res.round, 1)
        XCTAssertEqual(log.count(containing: "refusing connection from"), 1)
        for s in squatters { s.close() }
        try await assertGoodExchange(manager, port: port, id: "late")
        await early.finish(roundsCompleted: 1, reason: "done")
        _ = try await run.value
        await server.stop()
    }

    func testTwentyThousandConnectionAttemptsInABurst() async throws {
        let manager = TestManager()
        let log = CollectingLog()
        DescriptorLimit.raiseToHard()
        let wave = min(1500, Int(DescriptorLimit.soft) / 2 - 64)
        let (server, port) = try await server(manager, log: log.logger)
        let rssBefore = residentMegabytes()
        var opened = 0
        var peakRSS = rssBefore
        while opened < 20_000 {
            // A wave of connections held open at once (more than the handshake budget lets in),
            // then dropped without a word.
            var fds: [Int32] = []
            for _ in 0 ..< min(wave, 20_000 - opened) {
                if let s = try? RawSocket(port: port, timeout: 5) { fds.append(s.fd) }
                opened += 1
            }
            peakRSS = max(peakRSS, residentMegabytes())
            for fd in fds { Glibc.close(fd) }
        }
        let drained = await server.connectionCounts().first(within: .seconds(60)) { $0 == 0 }
        XCTAssertEqual(drained, 0, "every dropped connection closed on the server")
        let refusals = log.count(containing: "refusing connection from")
        XCTAssertGreaterThan(refusals, 0, "the burst must have been refused, and said so")
        XCTAssertLessThan(refusals, 50, "refusals are rate-limited to one line per interval")
        XCTAssertLessThan(peakRSS - rssBefore, 300, "RSS grew \(peakRSS - rssBefore) MB during the burst")
        try await assertGoodExchange(manager, port: port, id: "after-burst")
        await server.stop()
    }
}
