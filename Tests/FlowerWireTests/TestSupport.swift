// Shared test fixtures: a tiny ClientManager, a tiny Client, a raw-socket peer and a model.
import FlowerCore
@testable import FlowerWire
import Foundation
import Logging
import Synchronization
import XCTest

/// A ClientManager that keeps proxies by id and lets tests wait for them.
final class TestManager: ClientManager, Sendable {
    private let clients = Mutex<[String: any ClientProxy]>([:])
    let maxClients: Int?

    init(maxClients: Int? = nil) { self.maxClients = maxClients }

    func register(_ client: any ClientProxy) -> Result<Void, RegistrationRefusal> {
        clients.withLock { c in
            if c[client.id] != nil { return .failure(.duplicateIdentity(client.id)) }
            if let max = maxClients, c.count >= max { return .failure(.serverFull(max: max)) }
            c[client.id] = client
            return .success(())
        }
    }

    func unregister(id: String) { clients.withLock { _ = $0.removeValue(forKey: id) } }
    func unregister(_ client: any ClientProxy) {
        clients.withLock { c in if let cur = c[client.id], cur === client { c.removeValue(forKey: client.id) } }
    }
    func replace(with client: any ClientProxy) -> (any ClientProxy)? {
        clients.withLock { $0.updateValue(client, forKey: client.id) }
    }
    var count: Int { clients.withLock { $0.count } }
    func proxy(_ id: String) -> (any ClientProxy)? { clients.withLock { $0[id] } }

    /// Waits (polling, bounded by `seconds`) until `predicate` holds.
    func wait(seconds: Double = 20, _ predicate: @Sendable (TestManager) -> Bool) async throws {
        let end = Date().addingTimeInterval(seconds)
        while !predicate(self) {
            if Date() > end { throw WireError.timeout(operation: "test condition", seconds: seconds) }
            try await Task.sleep(for: .milliseconds(5))
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

let quietLogger: Logger = {
    var l = Logger(label: "flwr.wire.test")
    l.logLevel = .critical
    return l
}()

/// A test server on an ephemeral loopback port.
func startServer(_ manager: TestManager, token: String? = nil, maxFrameBytes: Int = 1 << 20,
                 handshake: Duration = .seconds(5), maxClients: Int? = nil) throws -> (WireServer, Int) {
    let config = WireServerConfig(host: "127.0.0.1", port: 0, authToken: token, maxFrameBytes: maxFrameBytes,
                                  handshakeTimeout: handshake, maxClients: maxClients)
    let server = WireServer(config: config, manager: manager, logger: quietLogger)
    return (server, try await server.start())
}

func clientConfig(_ port: Int, id: String, token: String? = nil, attempts: Int = 3) -> WireClientConfig {
    WireClientConfig(host: "127.0.0.1", port: port, clientID: id, partition: 1, authToken: token,
                     maxFrameBytes: 1 << 20, connectTimeout: .seconds(5),
                     retry: RetryPolicy(initialDelay: .milliseconds(20), maxDelay: .milliseconds(100), maxAttempts: attempts, seed: 1))
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

/// A raw TCP peer for sending arbitrary bytes to a server.
final class RawPeer: Sendable {
    let socket: Socket
    let io: FramedIO

    init(port: Int) throws {
        socket = try Socket.connect(host: "127.0.0.1", port: port, deadline: .after(.seconds(5)))
        io = FramedIO(socket: socket, counters: [])
    }

    /// Reads the server's Challenge.
    func challenge() throws -> Challenge {
        let m = try WireDecoder.serverMessage(io.readFrame(limit: 1 << 16, deadline: .after(.seconds(5)), timeout: .seconds(5), what: "challenge", peer: "server"), limit: 1 << 16)
        guard case .challenge(let c) = m else { throw WireError.unexpectedMessage(got: m.kind, expected: "Challenge") }
        return c
    }

    func send(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try socket.writeAll($0, deadline: .after(.seconds(5)), what: "raw") }
    }

    /// The next server message, or nil when the server closed the connection.
    func next(seconds: Double = 10) throws -> ServerMessage? {
        do {
            let f = try io.readFrame(limit: 1 << 20, deadline: .after(.seconds(seconds)), timeout: .seconds(seconds), what: "server message", peer: "server")
            return try WireDecoder.serverMessage(f, limit: 1 << 20)
        } catch WireError.connectionClosed {
            return nil
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
        let proof = token.map { HMACSHA256.proof(token: $0, nonce: c.nonce, clientID: id) } ?? []
        try send(WireEncoder.frame(.hello(Hello(protocolVersion: version, clientID: id, partition: nil, acceptsZlib: false,
                                                 authProof: proof, agent: "raw", maxFrameBytes: 0))))
        return try next()
    }
}
