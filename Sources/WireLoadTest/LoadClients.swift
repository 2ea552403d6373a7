// Many lightweight FlowerWire clients in one process, for measuring a server (`flwr bench
// clients`, the scale tests): each completes the real handshake, then waits idle; asked to fit,
// it returns the model it got plus a tiny change (every value + 1e-3), asked to evaluate, a loss
// of 0; Finish or Reconnect ends it. Thousands of them share the event loops (no thread each), and
// at most `processing` instructions are buffered and answered at once (the rest wait in TCP
// buffers), so the tool's own memory stays small while it loads a server.
import FlowerCore
import FlowerWire
import FlowerWireCodec
import Logging
import NIOCore
import Synchronization

/// Settings of a `LoadClients` swarm.
public struct LoadClientsConfig: Sendable {
    /// Server host.
    public var host: String
    /// Server port.
    public var port: Int
    /// Number of clients to open.
    public var count: Int
    /// Identities are `prefix` + a zero-padded index.
    public var idPrefix = "load-"
    /// Shared secret, when the server requires one.
    public var authToken: String?
    /// Computes the token's HMAC proof (FlowerTLS.CryptoHandshakeMAC); required with a token.
    public var mac: (any HandshakeMAC)?
    /// TLS (or another layer) around every connection; nil: plain TCP.
    public var security: (any ChannelSecurity)?
    /// Handshakes in flight at once.
    public var concurrency = 64
    /// Instructions buffered and answered at once over all clients.
    public var processing = 8
    /// Answer FitIns with a FIT_FAILED status instead of the model (reads every instruction at
    /// once, nothing is held back): the clients stay in a round without loading the server's
    /// aggregation, e.g. to let one real client train among thousands of idle ones.
    public var decline = false
    /// Time allowed for each connect + handshake.
    public var connectTimeout: Duration = .seconds(20)

    /// `count` clients for `host:port`.
    public init(host: String, port: Int, count: Int) {
        self.host = host
        self.port = port
        self.count = count
    }
}

/// A swarm of idle, answering clients.
public final class LoadClients: Sendable {
    private let sessions = Mutex<[FrameConnection]>([])
    private let tasks = Mutex<[Task<Void, Never>]>([])
    private let answeredFits = Atomic<Int>(0)
    private let answeredEvaluations = Atomic<Int>(0)
    private let finishedCount = Atomic<Int>(0)
    private let endedCount = Atomic<Int>(0)
    private let failures = Mutex<[String]>([])
    /// Clients that completed their handshake.
    public var connected: Int { sessions.withLock { $0.count } }
    /// FitIns answered so far.
    public var fits: Int { answeredFits.load(ordering: .relaxed) }
    /// EvaluateIns answered so far.
    public var evaluations: Int { answeredEvaluations.load(ordering: .relaxed) }
    /// Clients that received Finish.
    public var finished: Int { finishedCount.load(ordering: .relaxed) }
    /// Clients whose session ended (Finish, Reconnect, error, close).
    public var ended: Int { endedCount.load(ordering: .relaxed) }
    /// Handshake failures (first 20 kept) and their number.
    public var failureSummary: (count: Int, first: [String]) { failures.withLock { ($0.count, Array($0.prefix(20))) } }

    private init() {}

    /// Opens `config.count` clients (at most `config.concurrency` handshakes at once) and returns
    /// once every handshake completed or failed.
    public static func open(_ config: LoadClientsConfig, logger: Logger) async -> LoadClients {
        let swarm = LoadClients()
        let slots = PayloadSlots(capacity: config.processing)
        let width = max(1, String(config.count - 1).count)
        await withTaskGroup(of: Void.self) { group in
            var next = 0
            func add() {
                let i = next
                next += 1
                let digits = String(i)
                let id = config.idPrefix + String(repeating: "0", count: max(0, width - digits.count)) + digits
                group.addTask { await swarm.start(id: id, config: config, slots: slots, logger: logger) }
            }
            for _ in 0 ..< min(config.concurrency, config.count) { add() }
            while await group.next() != nil {
                if next < config.count { add() }
            }
        }
        return swarm
    }

    /// Waits until every connected client's session ended or `timeout` passed; true when all ended.
    public func waitUntilEnded(timeout: Duration) async -> Bool {
        let deadline = Deadline.after(timeout)
        while ended < connected {
            if deadline.remaining == .zero { return false }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return true
    }

    /// Closes every connection.
    public func close() async {
        for c in sessions.withLock({ $0 }) { c.close() }
        for t in tasks.withLock({ $0 }) { await t.value }
    }

    private func start(id: String, config: LoadClientsConfig, slots: PayloadSlots, logger: Logger) async {
        do {
            let deadline = Deadline.after(config.connectTimeout)
            let connection = try await FrameConnection.connect(host: config.host, port: config.port,
                                                               timeout: config.connectTimeout, limit: helloFrameLimit,
                                                               security: config.security)
            let first = try await connection.receive(timeout: deadline.remaining, what: "Challenge")
                .withProtobufBytes(limit: helloFrameLimit) { try WireDecoder.serverMessage($0, allocator: nil) }
            guard case .challenge(let challenge) = first else {
                connection.close()
                if case .refusal(let r) = first { throw WireError.refused(reason: r.reason, message: r.message) }
                throw WireError.unexpectedMessage(got: first.kind, expected: "Challenge")
            }
            var proof: [UInt8] = []
            if let token = config.authToken {
                guard let mac = config.mac else { throw WireError.tokenWithoutMAC }
                proof = mac.proof(token: token, nonce: challenge.nonce, clientID: id)
            }
            let hello = Hello(protocolVersion: flwrProtocolVersion, clientID: id, partition: nil, acceptsZlib: false,
                              authProof: proof, agent: "flwr bench clients", maxFrameBytes: 256 << 20)
            // Limits first: an instruction may follow the Welcome at once.
            // Declining clients read at once (their answers are tiny); answering ones take turns
            // through `slots` so that at most `processing` models are held in this process.
            try await connection.established(limit: 256 << 20, compression: false, slots: config.decline ? nil : slots)
            try await connection.send(try WireEncoder.frameBuffer(.hello(hello)), timeout: deadline.remaining, what: "Hello")
            let answer = try await connection.receive(timeout: deadline.remaining, what: "Welcome")
                .withProtobufBytes(limit: helloFrameLimit) { try WireDecoder.serverMessage($0, allocator: nil) }
            guard case .welcome = answer else {
                connection.close()
                if case .refusal(let r) = answer { throw WireError.refused(reason: r.reason, message: r.message) }
                throw WireError.unexpectedMessage(got: answer.kind, expected: "Welcome")
            }
            sessions.withLock { $0.append(connection) }
            let decline = config.decline
            let task = Task { await self.serve(connection, decline: decline, logger: logger) }
            tasks.withLock { $0.append(task) }
        } catch {
            failures.withLock { $0.append("\(id): \(error)") }
        }
    }

    private func serve(_ connection: FrameConnection, decline: Bool, logger: Logger) async {
        defer {
            connection.close()
            endedCount.add(1, ordering: .relaxed)
        }
        while true {
            guard let frame = try? await connection.receive(timeout: nil, what: "an instruction") else { return }
            defer { frame.slot?.release() }
            guard let message = try? frame.withProtobufBytes(limit: 256 << 20, { try WireDecoder.serverMessage($0, allocator: nil) }) else {
                logger.warning("load client: undecodable instruction; closing")
                return
            }
            let reply: ClientMessage
            switch message {
            case .fit(let ins) where decline:
                reply = .fitRes(FitRes(status: Status(code: .fitFailed, message: "idle load client (flwr bench clients --decline)"),
                                       round: ins.round, parameters: Parameters(), numExamples: 0))
                answeredFits.add(1, ordering: .relaxed)
            case .fit(let ins):
                var p = ins.parameters
                for i in p.values.indices { p.values[i] += 1e-3 }
                reply = .fitRes(FitRes(round: ins.round, parameters: p, numExamples: 1))
                answeredFits.add(1, ordering: .relaxed)
            case .evaluate(let ins):
                reply = .evaluateRes(EvaluateRes(round: ins.round, loss: 0, numExamples: 1, metrics: ["accuracy": .double(0)]))
                answeredEvaluations.add(1, ordering: .relaxed)
            case .getParameters:
                reply = .parametersRes(ParametersRes(status: Status(code: .getParametersFailed, message: "load client holds no model"),
                                                     parameters: Parameters()))
            case .finish:
                finishedCount.add(1, ordering: .relaxed)
                return
            default:
                return
            }
            guard let out = try? WireEncoder.frameBuffer(reply),
                  (try? await connection.send(out, timeout: .seconds(600), what: reply.kind)) != nil else { return }
        }
    }
}
