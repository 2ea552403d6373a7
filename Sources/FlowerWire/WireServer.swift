// The server transport on SwiftNIO: one listening channel on the shared event-loop group (one
// thread per core, no thread per connection); each accepted connection gets a pipeline
//
//   ReadGate → ByteToMessageHandler(FrameToMessageDecoder) → IdleStateHandler → ServerSessionHandler
//
// Admission happens before any of that: a connection is counted against --max-connections, and
// until it has proven itself with a Hello it also counts against a smaller pre-authentication
// budget and a per-address limit, so a flood of idle connections cannot lock handshaken clients
// out. Over a limit, the connection gets a SERVER_FULL Refusal frame and is closed.
import FlowerCore
import FlowerWireCodec
import Foundation
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// Settings of a `WireServer`.
public struct WireServerConfig: Sendable {
    /// Address to bind ("0.0.0.0" for all IPv4 interfaces, "::" for IPv6).
    public var host: String = "0.0.0.0"
    /// Port to bind; 0 picks a free one (returned by `start`).
    public var port: Int = 8080
    /// Shared secret clients must prove with HMAC-SHA256; nil accepts anyone (logged at start).
    public var authToken: String?
    /// Computes and checks the token's HMAC proof (FlowerTLS.CryptoHandshakeMAC); required with a token.
    public var mac: (any HandshakeMAC)?
    /// Largest frame payload accepted in a call, in bytes (--max-frame-mb).
    public var maxFrameBytes: Int = 256 << 20
    /// Time a new connection has to complete its Hello (pre-authentication deadline).
    public var handshakeTimeout: Duration = .seconds(10)
    /// Most clients registered at once; nil = no limit beyond the manager's.
    public var maxClients: Int?
    /// Most TCP connections open at once (handshaking or registered).
    public var maxConnections: Int = 16_384
    /// Most connections that have not completed their handshake, over all addresses.
    public var maxPendingHandshakes: Int = 1024
    /// Most connections that have not completed their handshake from one IP address.
    public var maxPendingHandshakesPerAddress: Int = 128
    /// Most large received payloads (FitRes, ...) buffered at once over all connections (K);
    /// other connections are not read until a slot frees.
    public var maxBufferedPayloads: Int = 2 * System.coreCount
    /// Whether zlib compression may be negotiated (used only when it pays).
    public var compressionAllowed: Bool = true
    /// Keep freed frame buffers in the heap for the next round (`WireMemory.retainLargeBuffers`).
    public var retainFrameBuffers: Bool = true
    /// Raise the process's soft RLIMIT_NOFILE to its hard limit at start.
    public var raiseDescriptorLimit: Bool = true
    /// The model this server runs, "<name>|<layout digest>"; clients stating another are refused
    /// at Hello ("" = no check).
    public var model: String = ""
    /// How clients must encode their fit updates (`--update-compression`), announced in Welcome;
    /// the server adds each decoded update onto the weights it sent before the strategy sees it.
    public var updateCompression: UpdateCompression = .none
    /// How the model travels in FitIns and EvaluateIns (`--broadcast-compression`): float32 or
    /// binary16 (clients decode it to float32). Under update compression the server still adds
    /// each update onto its own float32 weights.
    public var broadcastCompression: BroadcastCompression = .none
    /// TLS (or another layer) around every connection; nil: plain TCP.
    public var security: (any ChannelSecurity)?

    /// Defaults: 0.0.0.0:8080, no token, 256 MiB frames, 10 s handshake.
    public init(host: String = "0.0.0.0", port: Int = 8080, authToken: String? = nil,
                maxFrameBytes: Int = 256 << 20, handshakeTimeout: Duration = .seconds(10),
                maxClients: Int? = nil, compressionAllowed: Bool = true) {
        self.host = host
        self.port = port
        self.authToken = authToken
        self.maxFrameBytes = maxFrameBytes
        self.handshakeTimeout = handshakeTimeout
        self.maxClients = maxClients
        self.compressionAllowed = compressionAllowed
    }
}

/// Hello frames are read before authentication, so they get a small limit of their own.
package let helloFrameLimit = 64 << 10
/// Between calls a client may only send Goodbye: frames on an idle connection are refused above this.
let idleFrameLimit = 4 << 10

/// The FlowerWire TCP server: registers one `ClientProxy` per handshaken connection into `manager`.
public final class WireServer: Sendable {
    /// Connection bookkeeping for admission (all counts, never file descriptors).
    struct Admission {
        var open = 0
        var pending = 0
        var pendingByAddress: [String: Int] = [:]
        var stopping = false
        var sessions: UInt64 = 0
        var peakOpen = 0
        var openWatchers = ChangeWatchers<Int>()
    }

    let config: WireServerConfig
    let manager: any ClientManager
    let logger: Logger
    /// Warnings that can repeat thousands of times (refused connections, timeouts): one line per
    /// 5 s per key, with the number suppressed since the last line.
    let warnings: LogThrottle
    /// The K payload slots (`maxBufferedPayloads`); the Flower-protocol listener of the same
    /// process may share them, so K bounds both.
    public let slots: PayloadSlots
    let broadcast = BroadcastCache()
    private let admission = Mutex(Admission())
    private let listener = Mutex<(any Channel)?>(nil)
    /// Reports the tail of a warning flood once its interval ends (`LogThrottle.flush`).
    private let warningFlush = Mutex<RepeatedTask?>(nil)
    /// Open session channels, keyed by their channel object.
    private let channels = Mutex<[ObjectIdentifier: any Channel]>([:])
    private let group: MultiThreadedEventLoopGroup
    /// Bytes in and out over all connections, frame headers included.
    public let counters = ByteCounter()

    /// A server that will register clients into `manager`; call `start` to listen.
    public init(config: WireServerConfig, manager: any ClientManager, logger: Logger,
                group: MultiThreadedEventLoopGroup = WireEventLoops.group) {
        self.config = config
        self.manager = manager
        self.logger = logger
        self.group = group
        warnings = LogThrottle(logger: logger, interval: .seconds(5), maxKeys: 1024)
        slots = PayloadSlots(capacity: config.maxBufferedPayloads)
    }

    /// Total bytes received from all clients.
    public var bytesIn: Int { counters.bytesIn }
    /// Total bytes sent to all clients.
    public var bytesOut: Int { counters.bytesOut }
    /// TCP connections open now (handshaking or registered).
    public var connectionCount: Int { admission.withLock { $0.open } }
    /// `connectionCount` now, then after each change: a test waits on it for connections to close.
    package func connectionCounts() -> AsyncStream<Int> {
        ChangeWatchers.stream(add: { c in admission.withLock { a in let n = a.open; return a.openWatchers.add(c, current: n) } },
                              remove: { [weak self] id in self?.admission.withLock { $0.openWatchers.remove(id) } })
    }
    /// Connections open now that have not completed their handshake.
    public var pendingHandshakes: Int { admission.withLock { $0.pending } }
    /// Most large payloads that were buffered at once so far.
    public var peakBufferedPayloads: Int { slots.peakHeld }

    /// Binds and listens, serves on the event loops, and returns the bound port.
    public func start() async throws -> Int {
        guard config.maxFrameBytes > 0 && config.maxFrameBytes <= FrameHeader.maxLength else {
            throw WireError.frameTooLarge(length: config.maxFrameBytes, limit: FrameHeader.maxLength)
        }
        if config.authToken != nil && config.mac == nil { throw WireError.tokenWithoutMAC }
        if config.retainFrameBuffers { WireMemory.retainLargeBuffers(upTo: 2 * config.maxFrameBytes) }
        if config.raiseDescriptorLimit {
            let (before, after) = DescriptorLimit.raiseToHard()
            let note = after > before ? "raised from \(before) to the hard limit \(after)" : "\(after) (already the hard limit)"
            logger.info("open-file limit (RLIMIT_NOFILE) \(note); --max-connections \(config.maxConnections)")
            if after < UInt64(config.maxConnections) + 64 {
                logger.warning("the open-file limit \(after) is below --max-connections \(config.maxConnections): at most about \(after) connections can be accepted; raise the hard limit (ulimit -Hn) or lower --max-connections")
            }
        }
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.so_keepalive), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 4)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture { try self.initialize(channel) }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.bind(host: config.host, port: config.port).get()
        } catch {
            throw WireError.system(call: "bind(\(config.host):\(config.port))", errno: (error as? IOError)?.errnoCode ?? 0,
                                   detail: "\(error); is another server on this port? pick another --port")
        }
        listener.withLock { $0 = channel }
        let flush = channel.eventLoop.scheduleRepeatedTask(initialDelay: .seconds(5), delay: .seconds(5)) { [warnings] _ in warnings.flush() }
        warningFlush.withLock { $0 = flush }
        let port = channel.localAddress?.port ?? config.port
        if let security = config.security {
            logger.info("connections secured: \(security.summary)")
        }
        if config.authToken == nil && config.security == nil {
            logger.warning("no --auth-token (FLWR_AUTH_TOKEN) set: any client that can reach port \(port) may join")
        }
        logger.info("FlowerWire listening on \(config.host):\(port) (protocol \(flwrProtocolVersion), max frame \(WireError.mib(config.maxFrameBytes)) MiB, \(group.makeIterator().map { _ in 1 }.count) event loops, \(slots.capacity) payload slots)")
        return port
    }

    /// Closes the listener and every connection (their pending calls fail) and waits for them.
    public func stop() async {
        admission.withLock { $0.stopping = true }
        warningFlush.withLock { $0?.cancel(); $0 = nil }
        let l = listener.withLock { c -> (any Channel)? in defer { c = nil }; return c }
        try? await l?.close().get()
        let open = channels.withLock { Array($0.values) }
        for c in open { c.close(promise: nil) }
        for c in open { try? await c.closeFuture.get() }
    }

    // MARK: Admission (any event loop)

    private enum Admit { case ok(session: UInt64), refuse(String, key: String) }

    private func admit(address: String) -> Admit {
        admission.withLock { a in
            if a.stopping { return .refuse("the server is stopping", key: "stopping") }
            if a.open >= config.maxConnections {
                return .refuse("the server already holds its maximum of \(config.maxConnections) connections (--max-connections)", key: "max-connections")
            }
            if a.pending >= config.maxPendingHandshakes {
                return .refuse("\(config.maxPendingHandshakes) connections are already handshaking; try again shortly", key: "pending")
            }
            let mine = a.pendingByAddress[address, default: 0]
            if mine >= config.maxPendingHandshakesPerAddress {
                return .refuse("\(config.maxPendingHandshakesPerAddress) connections from \(address) are already handshaking; try again shortly", key: "per-address")
            }
            a.open += 1
            a.peakOpen = max(a.peakOpen, a.open)
            a.openWatchers.send(a.open)
            a.pending += 1
            a.pendingByAddress[address] = mine + 1
            a.sessions += 1
            return .ok(session: a.sessions)
        }
    }

    /// The connection from `address` completed its handshake (or closed before): it leaves the
    /// pre-authentication budget.
    func leftPending(address: String) {
        admission.withLock { a in
            a.pending -= 1
            let n = a.pendingByAddress[address, default: 1] - 1
            a.pendingByAddress[address] = n > 0 ? n : nil
        }
    }

    func closed(_ channel: any Channel, wasPending: Bool, address: String) {
        if wasPending { leftPending(address: address) }
        admission.withLock { a in
            a.open -= 1
            a.openWatchers.send(a.open)
        }
        channels.withLock { _ = $0.removeValue(forKey: ObjectIdentifier(channel)) }
    }

    private func initialize(_ channel: any Channel) throws {
        // The security layer goes first, so even a refusal below travels inside TLS.
        try config.security?.secure(channel)
        let address = channel.remoteAddress?.ipAddress ?? "unknown"
        let peer = channel.remoteAddress.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? "unknown"
        switch admit(address: address) {
        case .refuse(let why, let key):
            warnings.warning(key: "refuse-\(key)", "refusing connection from \(peer) with SERVER_FULL: \(why)")
            // A proper protocol refusal, not a silent close: the client learns why and backs off.
            let refusal = Refusal(reason: .serverFull, message: "\(why)")
            if let frame = try? WireEncoder.frameBuffer(.refusal(refusal), allocator: channel.allocator) {
                channel.writeAndFlush(frame).whenComplete { _ in channel.close(promise: nil) }
            } else {
                channel.close(promise: nil)
            }
        case .ok(let session):
            channels.withLock { $0[ObjectIdentifier(channel)] = channel }
            let policy = FramePolicy(limit: min(helloFrameLimit, config.maxFrameBytes))
            policy.slots = slots
            let handler = ServerSessionHandler(server: self, policy: policy, peer: peer, address: address, sessionID: "s\(session)")
            let sync = channel.pipeline.syncOperations
            try sync.addHandler(ReadGate(policy: policy))
            try sync.addHandler(ByteToMessageHandler(FrameToMessageDecoder(policy: policy)))
            try sync.addHandler(IdleStateHandler(readTimeout: timeAmount(config.handshakeTimeout)), name: ServerSessionHandler.idleHandlerName)
            try sync.addHandler(handler)
        }
    }

    /// Fresh random nonce for a Challenge (system randomness: it must not be predictable).
    static func nonce() -> [UInt8] {
        var rng = SystemRandomNumberGenerator()
        return (0 ..< 32).map { _ in UInt8.random(in: 0 ... 255, using: &rng) }
    }
}

/// Encode once, send to all: the frames of a round's FitIns and EvaluateIns, built once and shared
/// by reference among every sampled client (FlowerCore's `EncodeOnce`, keyed also by compression).
final class BroadcastCache: Sendable {
    private let cache = EncodeOnce<ByteBuffer>()

    /// Frames encoded so far, and the times a cached one was reused.
    var stats: (built: Int, reused: Int) { cache.stats }

    /// The frame for `message` (FitIns/EvaluateIns), encoding it only the first time; `broadcast`
    /// fp16 sends its parameters as binary16.
    func frame(_ message: ServerMessage, zlib: Bool, broadcast: BroadcastCompression = .none) throws -> ByteBuffer {
        let instruction: EncodeOnce<ByteBuffer>.Instruction
        switch message {
        case .fit(let ins): instruction = .fit(ins)
        case .evaluate(let ins): instruction = .evaluate(ins)
        default: return try WireEncoder.frameBuffer(message, compression: zlib)
        }
        let variant = (zlib ? 1 : 0) + (broadcast == .fp16 ? 2 : 0)
        return try cache.encoded(instruction, variant: variant) { try WireEncoder.frameBuffer(message, compression: zlib, broadcast: broadcast) }
    }
}
