// Shared test fixtures: a tiny ClientManager, a tiny Client, a raw-socket peer and a model.
import FlowerCore
import FlowerTLS
@testable import FlowerWire
@testable import FlowerWireCodec
import Foundation
import Logging
import Synchronization
import TestSupport
import XCTest

/// A ClientManager that keeps proxies by id and lets tests wait for them (woken by each change).
final class TestManager: ClientManager, Sendable {
    private let clients = Mutex<[String: any ClientProxy]>([:])
    private let changes = ChangeSignal()
    let maxClients: Int?

    init(maxClients: Int? = nil) { self.maxClients = maxClients }

    func register(_ client: any ClientProxy) -> Result<Void, RegistrationRefusal> {
        let result: Result<Void, RegistrationRefusal> = clients.withLock { c in
            if c[client.id] != nil { return .failure(.duplicateIdentity(client.id)) }
            if let max = maxClients, c.count >= max { return .failure(.serverFull(max: max)) }
            c[client.id] = client
            return .success(())
        }
        changes.changed()
        return result
    }

    func unregister(id: String) {
        clients.withLock { _ = $0.removeValue(forKey: id) }
        changes.changed()
    }
    func unregister(_ client: any ClientProxy) {
        clients.withLock { c in if let cur = c[client.id], cur === client { c.removeValue(forKey: client.id) } }
        changes.changed()
    }
    func replace(with client: any ClientProxy) -> (any ClientProxy)? {
        defer { changes.changed() }
        return clients.withLock { $0.updateValue(client, forKey: client.id) }
    }
    var count: Int { clients.withLock { $0.count } }
    func proxy(_ id: String) -> (any ClientProxy)? { clients.withLock { $0[id] } }

    /// Waits until `predicate` holds, re-checked on each registry change (at most `seconds`).
    func wait(seconds: Double = 20, _ predicate: @escaping @Sendable (TestManager) -> Bool) async throws {
        guard await changes.wait(for: { predicate(self) }, timeout: .milliseconds(Int64(seconds * 1000))) else {
            throw WireError.timeout(operation: "test condition", seconds: seconds)
        }
    }

    func waitForProxy(_ id: String) async throws -> any ClientProxy {
        try await wait { $0.proxy(id) != nil }
        guard let p = proxy(id) else { throw WireError.notReady("no proxy \(id)") }
        return p
    }
}

/// A client that adds 1 to every parameter, reports 10 examples, and evaluates loss = sum / count.
struct PlusOneClient: Client {
    func getParameters(_ ins: GetParametersIns) async throws -> ParametersRes {
        ParametersRes(parameters: try testModel(count: 3, seed: 1))
    }

    func fit(_ ins: FitIns) async throws -> FitRes {
        var p = ins.parameters
        for i in p.values.indices { p.values[i] += 1 }
        return FitRes(round: ins.round, parameters: p, numExamples: 10, metrics: ["echo": ins.config["tag"] ?? .string("none")])
    }

    func evaluate(_ ins: EvaluateIns) async throws -> EvaluateRes {
        let sum = ins.parameters.values.reduce(0, +)
        return EvaluateRes(round: ins.round, loss: Double(sum) / Double(max(1, ins.parameters.count)), numExamples: 5)
    }
}

/// A small two-tensor model with deterministic values.
func testModel(count: Int = 1_000, seed: UInt64 = 7) throws -> Parameters {
    var rng = SplitMix64(seed: seed)
    let values = (0 ..< count).map { _ in Float(Int(rng.next() % 2001) - 1000) / 64 }
    let w = count - count / 10
    return try Parameters(shapes: [("w", [w]), ("b", [count / 10])], values: values)
}

/// A test server on an ephemeral loopback port.
func startServer(_ manager: TestManager, token: String? = nil, maxFrameBytes: Int = 1 << 20,
                 handshake: Duration = .seconds(5), maxClients: Int? = nil) async throws -> (WireServer, Int) {
    var config = WireServerConfig(host: "127.0.0.1", port: 0, authToken: token, maxFrameBytes: maxFrameBytes,
                                  handshakeTimeout: handshake, maxClients: maxClients)
    config.mac = CryptoHandshakeMAC()
    let server = WireServer(config: config, manager: manager, logger: quietLogger)
    return (server, try await server.start())
}

func clientConfig(_ port: Int, id: String, token: String? = nil, attempts: Int = 3) -> WireClientConfig {
    var config = WireClientConfig(host: "127.0.0.1", port: port, clientID: id, partition: 1, authToken: token,
                                  maxFrameBytes: 1 << 20, connectTimeout: .seconds(30),
                                  retry: RetryPolicy(initialDelay: .milliseconds(20), maxDelay: .milliseconds(100), maxAttempts: attempts, seed: 1))
    config.mac = CryptoHandshakeMAC()
    return config
}

/// A well-behaved client completes fit + evaluate + finish on the server: the server still serves.
func assertGoodExchange(_ manager: TestManager, port: Int, id: String = "good", token: String? = nil,
                        file: StaticString = #filePath, line: UInt = #line) async throws {
    let config = clientConfig(port, id: id, token: token)
    let run = Task { try await WireClient.run(config: config, client: PlusOneClient(), logger: quietLogger) }
    defer { run.cancel() }  // a no-op after Finish; stops the client if an assertion threw first
    let proxy = try await manager.waitForProxy(id)
    let model = try testModel()
    let res = try await proxy.fit(FitIns(round: 3, parameters: model, config: ["tag": .string("x")]), timeout: .seconds(20))
    XCTAssertEqual(res.round, 3, file: file, line: line)
    XCTAssertEqual(res.numExamples, 10, file: file, line: line)
    XCTAssertEqual(res.parameters.layout, model.layout, file: file, line: line)
    XCTAssertEqual(res.parameters.values, model.values.map { $0 + 1 }, file: file, line: line)
    XCTAssertEqual(res.metrics["echo"], .string("x"), file: file, line: line)
    let eval = try await proxy.evaluate(EvaluateIns(round: 3, parameters: model), timeout: .seconds(20))
    XCTAssertEqual(eval.loss, Double(model.values.reduce(0, +)) / Double(model.count), accuracy: 1e-9, file: file, line: line)
    await proxy.finish(roundsCompleted: 3, reason: "done")
    let rounds = try await run.value
    XCTAssertEqual(rounds, 3, file: file, line: line)
    try await manager.wait { $0.proxy(id) == nil }
}

/// A blocking loopback TCP socket for tests (a peer nobody's transport code wrote: plain POSIX).
final class RawSocket: Sendable {
    let fd: Int32

    /// Connects to 127.0.0.1:`port`; reads time out after `timeout` seconds.
    init(port: Int, timeout: Double = 10) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw WireError.system(call: "socket", errno: errno, detail: "") }
        var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - Double(Int(timeout))) * 1e6))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let r = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard r == 0 else { let e = errno; Glibc.close(fd); throw WireError.system(call: "connect", errno: e, detail: String(cString: strerror(e))) }
    }

    /// Reserves a free loopback port (bound then closed).
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { Glibc.close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    func writeAll(_ bytes: [UInt8]) throws {
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + off, bytes.count - off, Int32(MSG_NOSIGNAL)) }
            if n < 0 { if errno == EINTR { continue }; throw WireError.system(call: "send", errno: errno, detail: String(cString: strerror(errno))) }
            off += n
        }
    }

    /// Up to `max` bytes; 0 at end of stream; throws `timeout` when nothing came in time.
    func read(max: Int = 65536) throws -> [UInt8] {
        var buf = [UInt8](repeating: 0, count: max)
        while true {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, max, 0) }
            if n >= 0 { return Array(buf[0 ..< n]) }
            if errno == EINTR { continue }
            if errno == EAGAIN || errno == EWOULDBLOCK { throw WireError.timeout(operation: "raw read", seconds: 0) }
            if errno == ECONNRESET { return [] }
            throw WireError.system(call: "recv", errno: errno, detail: String(cString: strerror(errno)))
        }
    }

    func close() { Glibc.close(fd) }
}

/// A raw TCP peer for sending arbitrary bytes to a server.
final class RawPeer: Sendable {
    let socket: RawSocket
    private let decoder = Mutex(EmbeddedFrameReader(limit: 1 << 20))
    private let queue = Mutex<[Frame]>([])

    init(port: Int) throws {
        socket = try RawSocket(port: port)
    }

    /// Reads the server's Challenge.
    func challenge() throws -> Challenge {
        guard let m = try next(seconds: 5) else { throw WireError.connectionClosed("server") }
        guard case .challenge(let c) = m else { throw WireError.unexpectedMessage(got: m.kind, expected: "Challenge") }
        return c
    }

    func send(_ bytes: [UInt8]) throws {
        try socket.writeAll(bytes)
    }

    /// The next server message, or nil when the server closed the connection.
    func next(seconds: Double = 10) throws -> ServerMessage? {
        let end = Date().addingTimeInterval(seconds)
        while true {
            if let f = queue.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) {
                return try WireDecoder.serverMessage(f, limit: 1 << 20)
            }
            if Date() > end { throw WireError.timeout(operation: "server message", seconds: seconds) }
            let bytes: [UInt8]
            do { bytes = try socket.read() } catch WireError.timeout { continue }
            if bytes.isEmpty { return nil }
            let frames = try decoder.withLock { try $0.feed(bytes) }
            queue.withLock { $0 += frames }
        }
    }

    /// Reads until the server closes; returns the messages seen.
    func drainUntilClosed(seconds: Double = 10) throws -> [ServerMessage] {
        var out: [ServerMessage] = []
        while let m = try next(seconds: seconds) { out.append(m) }
        return out
    }

    func close() { socket.close() }
}

extension RawPeer {
    /// Completes a proper handshake as `id` and returns the Welcome.
    @discardableResult
    func handshake(id: String, token: String? = nil, version: UInt32 = flwrProtocolVersion) throws -> ServerMessage? {
        let c = try challenge()
        let proof = token.map { CryptoHandshakeMAC().proof(token: $0, nonce: c.nonce, clientID: id) } ?? []
        try send(WireEncoder.frame(.hello(Hello(protocolVersion: version, clientID: id, partition: nil, acceptsZlib: false,
                                                 authProof: proof, agent: "raw", maxFrameBytes: 0))))
        return try next()
    }
}

/// A plain POSIX listening socket on 127.0.0.1 (an ephemeral port): a server nobody's transport
/// code wrote, for driving the client side byte by byte.
final class RawListener: Sendable {
    let fd: Int32
    let port: Int

    init() throws {
        let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard s >= 0 else { throw WireError.system(call: "socket", errno: errno, detail: "") }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, len) } }
        guard bound == 0, listen(s, 4) == 0 else { let e = errno; Glibc.close(s); throw WireError.system(call: "bind/listen", errno: e, detail: "") }
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(s, $0, &len) } }
        fd = s
        port = Int(UInt16(bigEndian: addr.sin_port))
    }

    /// The next connection (blocking); reads on it time out after 10 s.
    func accept() throws -> RawConnection {
        let conn = Glibc.accept(fd, nil, nil)
        guard conn >= 0 else { throw WireError.system(call: "accept", errno: errno, detail: "") }
        return RawConnection(fd: conn)
    }

    deinit { Glibc.close(fd) }
}

/// The server end of a `RawListener` connection.
final class RawConnection: @unchecked Sendable {
    let fd: Int32
    private var decoder = EmbeddedFrameReader(limit: 1 << 20)
    private var frames: [Frame] = []

    init(fd: Int32) {
        self.fd = fd
        var tv = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    func writeAll(_ bytes: [UInt8]) throws {
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + off, bytes.count - off, Int32(MSG_NOSIGNAL)) }
            if n < 0 { if errno == EINTR { continue }; throw WireError.system(call: "send", errno: errno, detail: "") }
            off += n
        }
    }

    /// The next client message, or nil at end of stream.
    func nextClientMessage() throws -> ClientMessage? {
        while frames.isEmpty {
            var buf = [UInt8](repeating: 0, count: 65536)
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, 65536, 0) }
            if n == 0 { return nil }
            if n < 0 { if errno == EINTR { continue }; throw WireError.system(call: "recv", errno: errno, detail: "") }
            frames += try decoder.feed(Array(buf[0 ..< n]))
        }
        return try WireDecoder.clientMessage(frames.removeFirst(), limit: 1 << 20)
    }

    func close() { Glibc.close(fd) }
}
