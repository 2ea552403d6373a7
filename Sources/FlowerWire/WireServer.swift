// The server transport: a listener thread accepts connections; each connection gets its own
// thread that runs the handshake and then serves the ClientProxy calls the round loop makes.
import FlowerCore
import Foundation
import Logging
import Synchronization

/// Settings of a `WireServer`.
public struct WireServerConfig: Sendable {
    /// Address to bind ("0.0.0.0" for all IPv4 interfaces, "::" for IPv6).
    public var host: String = "0.0.0.0"
    /// Port to bind; 0 picks a free one (returned by `start`).
    public var port: Int = 8080
    /// Shared secret clients must prove with HMAC-SHA256; nil accepts anyone (logged at start).
    public var authToken: String?
    /// Largest frame payload accepted, in bytes (--max-frame-mb).
    public var maxFrameBytes: Int = 256 << 20
    /// Time a new connection has to send its Hello.
    public var handshakeTimeout: Duration = .seconds(10)
    /// Most clients registered at once; nil = no limit beyond the manager's.
    public var maxClients: Int?
    /// Most TCP connections open at once (handshaking or registered); more are closed at accept.
    public var maxConnections: Int = 4096
    /// Whether zlib compression may be negotiated (used only when it pays).
    public var compressionAllowed: Bool = true
    /// Keep freed frame buffers in the heap for the next round (`WireMemory.retainLargeBuffers`).
    public var retainFrameBuffers: Bool = true
    /// The model this server runs, "<name>|<layout digest>"; clients stating another are refused
    /// at Hello ("" = no check).
    public var model: String = ""

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
let helloFrameLimit = 64 << 10

/// The FlowerWire TCP server: registers one `ClientProxy` per handshaken connection into `manager`.
public final class WireServer: Sendable {
    private struct State {
        var listener: Socket?
        var stopping = false
        var threads = 0
        var sockets: [Int32: Socket] = [:]
        var proxies: [Int32: WireClientProxy] = [:]
        var sessions = 0
    }

    let config: WireServerConfig
    let manager: any ClientManager
    let logger: Logger
    private let state = Mutex(State())
    private let wake: WakePipe?
    /// Bytes in and out over all connections, frame headers included.
    public let counters = ByteCounter()

    /// A server that will register clients into `manager`; call `start` to listen.
    public init(config: WireServerConfig, manager: any ClientManager, logger: Logger) {
        self.config = config
        self.manager = manager
        self.logger = logger
        self.wake = try? WakePipe()
    }

    /// Total bytes received from all clients.
    public var bytesIn: Int { counters.bytesIn }
    /// Total bytes sent to all clients.
    public var bytesOut: Int { counters.bytesOut }
    /// TCP connections open now (handshaking or registered).
    public var connectionCount: Int { state.withLock { $0.sockets.count } }

    /// Binds and listens, serves in the background, and returns the bound port.
    public func start() throws -> Int {
        guard let wake else { throw Sys.error("pipe", errno) }
        guard config.maxFrameBytes > 0 && config.maxFrameBytes <= FrameHeader.maxLength else {
            throw WireError.frameTooLarge(length: config.maxFrameBytes, limit: FrameHeader.maxLength)
        }
        if config.retainFrameBuffers { WireMemory.retainLargeBuffers(upTo: 2 * config.maxFrameBytes) }
        let (listener, port) = try Socket.listen(host: config.host, port: config.port)
        state.withLock { $0.listener = listener; $0.threads += 1 }
        if config.authToken == nil {
            logger.warning("no --auth-token (FLWR_AUTH_TOKEN) set: any client that can reach port \(port) may join")
        }
        logger.info("FlowerWire listening on \(config.host):\(port) (protocol \(flwrProtocolVersion), max frame \(WireError.mib(config.maxFrameBytes)) MiB)")
        startThread("flwr-accept") { [self] in
            acceptLoop(listener, wake)
            listener.close()
            state.withLock { $0.threads -= 1 }
        }
        return port
    }

    /// Closes the listener and every connection, and waits until their threads have ended.
    public func stop() async {
        let sockets = state.withLock { s -> [Socket] in
            s.stopping = true
            return Array(s.sockets.values)
        }
        wake?.notify()
        for socket in sockets { socket.shutdown() }
        for proxy in state.withLock({ Array($0.proxies.values) }) { proxy.abort(reason: "the server is stopping") }
        while state.withLock({ $0.threads }) > 0 {
            try? await Task.sleep(for: .milliseconds(2))
        }
    }

    private func acceptLoop(_ listener: Socket, _ wake: WakePipe) {
        while !state.withLock({ $0.stopping }) {
            var fds = [pollfd(fd: listener.fd, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: wake.readFD, events: Int16(POLLIN), revents: 0)]
            let r = poll(&fds, 2, -1)
            if r < 0 && errno != EINTR {
                logger.error("poll on the listener failed: \(Sys.error("poll", errno)); the server stops accepting")
                return
            }
            if fds[1].revents != 0 { wake.drain() }
            guard fds[0].revents != 0 else { continue }
            while true {
                let accepted: (Socket, String)?
                do {
                    accepted = try listener.accept()
                } catch {
                    // EMFILE and friends: log, back off briefly, keep serving the others.
                    logger.warning("accept failed: \(error); retrying")
                    usleep(10_000)
                    break
                }
                guard let (socket, peer) = accepted else { break }
                admit(socket, peer: peer)
            }
        }
    }

    private func admit(_ socket: Socket, peer: String) {
        let admitted = state.withLock { s -> Bool in
            guard !s.stopping, s.sockets.count < config.maxConnections else { return false }
            s.sockets[socket.fd] = socket
            s.threads += 1
            s.sessions += 1
            return true
        }
        guard admitted else {
            logger.warning("refusing connection from \(peer): \(config.maxConnections) connections already open")
            socket.close()
            return
        }
        let session = state.withLock { $0.sessions }
        startThread("flwr-conn-\(session)") { [self] in
            let connection = ServerConnection(server: self, socket: socket, peer: peer, sessionID: "s\(session)")
            connection.run()
            state.withLock { s in
                s.sockets[socket.fd] = nil
                s.proxies[socket.fd] = nil
                s.threads -= 1
            }
            socket.close()
        }
    }

    /// Called by a connection once its proxy exists, so `stop` can abort it.
    func track(_ proxy: WireClientProxy, fd: Int32) -> Bool {
        state.withLock { s in
            guard !s.stopping else { return false }
            s.proxies[fd] = proxy
            return true
        }
    }

    /// Fresh random nonce for a Challenge (system randomness: it must not be predictable).
    static func nonce() -> [UInt8] {
        var rng = SystemRandomNumberGenerator()
        return (0 ..< 32).map { _ in UInt8.random(in: 0 ... 255, using: &rng) }
    }
}
