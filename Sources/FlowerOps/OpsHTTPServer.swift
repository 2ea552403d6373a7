// The operations listener: HTTP/1.1 (NIOHTTP1) on the wire's event-loop group, serving
//   GET /healthz  200 "ok" while every event loop and the task pool answer, else 503 + reason
//   GET /readyz   200 "ready" when the command says so, else 503 + reason
//   GET /metrics  Prometheus text exposition (format 0.0.4)
// HEAD is answered like GET without a body; other methods get 405, other paths 404.
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// Why the operations listener could not start.
public enum OpsError: Error, CustomStringConvertible {
    case bind(host: String, port: Int, detail: String)

    public var description: String {
        switch self {
        case .bind(let host, let port, let detail):
            return "cannot listen for HTTP on \(host):\(port) (\(detail)); pick another --http-port or free that port"
        }
    }
}

/// What the endpoints answer with.
public struct OpsEndpoints: Sendable {
    /// Liveness check of the event loops.
    public var liveness: LivenessCheck
    /// Readiness, asked on every /readyz.
    public var readiness: @Sendable () -> Readiness
    /// The /metrics body (Prometheus text).
    public var metrics: @Sendable () -> String

    /// Endpoints from the given checks.
    public init(liveness: LivenessCheck, readiness: @escaping @Sendable () -> Readiness,
                metrics: @escaping @Sendable () -> String) {
        self.liveness = liveness
        self.readiness = readiness
        self.metrics = metrics
    }
}

/// One HTTP answer.
struct OpsResponse: Sendable {
    var status: HTTPResponseStatus
    var contentType = "text/plain; charset=utf-8"
    var body: String
}

/// The HTTP/1.1 listener for /healthz, /readyz and /metrics.
public final class OpsHTTPServer: Sendable {
    let endpoints: OpsEndpoints
    let logger: Logger
    /// The loop the listener and its connections run on (one of the wire's loops).
    let loop: any EventLoop
    private let channel = Mutex<(any Channel)?>(nil)

    /// A listener on one loop of `group` (the wire's group: liveness then checks the loops the
    /// wire really runs on).
    public init(endpoints: OpsEndpoints, group: any EventLoopGroup, logger: Logger) {
        self.endpoints = endpoints
        self.logger = logger
        loop = group.next()
    }

    /// Binds `host:port` (0: any free port) and returns the bound port.
    public func start(host: String, port: Int) async throws -> Int {
        let endpoints = self.endpoints
        let bootstrap = ServerBootstrap(group: loop)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.so_keepalive), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    // A probe or scrape connection idle for a minute is closed (no fd held forever).
                    try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: .seconds(60)))
                    try channel.pipeline.syncOperations.addHandler(OpsHTTPHandler(endpoints: endpoints))
                }
            }
        let bound: any Channel
        do {
            bound = try await bootstrap.bind(host: host, port: port).get()
        } catch {
            throw OpsError.bind(host: host, port: port, detail: "\(error)")
        }
        channel.withLock { $0 = bound }
        let actual = bound.localAddress?.port ?? port
        logger.info("operations HTTP on \(host):\(actual): /healthz /readyz /metrics")
        return actual
    }

    /// Closes the listener.
    public func stop() async {
        let c = channel.withLock { c -> (any Channel)? in defer { c = nil }; return c }
        try? await c?.close().get()
    }
}

/// Routes one request at a time per connection (HTTP/1.1 without pipelining of answers).
final class OpsHTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let endpoints: OpsEndpoints
    private var head: HTTPRequestHead?

    init(endpoints: OpsEndpoints) { self.endpoints = endpoints }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent { context.close(promise: nil) } else { context.fireUserInboundEventTriggered(event) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h): head = h
        case .body: break  // requests carry no body we read; it is discarded
        case .end:
            guard let h = head else { return }
            head = nil
            let keepAlive = h.isKeepAlive
            let version = h.version
            let isHead = h.method == .HEAD
            let future = respond(to: h, on: context.eventLoop)
            future.assumeIsolated().whenComplete { result in
                let response: OpsResponse
                switch result {
                case .success(let r): response = r
                case .failure(let e): response = OpsResponse(status: .internalServerError, body: "error: \(e)\n")
                }
                self.write(response, version: version, keepAlive: keepAlive, omitBody: isHead, context: context)
            }
        }
    }

    private func respond(to head: HTTPRequestHead, on loop: any EventLoop) -> EventLoopFuture<OpsResponse> {
        let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
        #if DEBUG || FLWR_TEST_HOOKS
        if let hook = DebugHooks.response(method: head.method, uri: head.uri, path: path, group: endpoints.liveness.group, loop: loop) { return hook }
        #endif
        guard head.method == .GET || head.method == .HEAD else {
            return loop.makeSucceededFuture(OpsResponse(status: .methodNotAllowed, body: "only GET and HEAD are served\n"))
        }
        switch path {
        case "/healthz", "/livez":
            return endpoints.liveness.check(on: loop).map { problem in
                problem.map { OpsResponse(status: .serviceUnavailable, body: "unhealthy: \($0)\n") }
                    ?? OpsResponse(status: .ok, body: "ok\n")
            }
        case "/readyz":
            switch endpoints.readiness() {
            case .ready: return loop.makeSucceededFuture(OpsResponse(status: .ok, body: "ready\n"))
            case .notReady(let why):
                return loop.makeSucceededFuture(OpsResponse(status: .serviceUnavailable, body: "not ready: \(why)\n"))
            }
        case "/metrics":
            return loop.makeSucceededFuture(OpsResponse(status: .ok, contentType: "text/plain; version=0.0.4; charset=utf-8",
                                                        body: endpoints.metrics()))
        default:
            return loop.makeSucceededFuture(OpsResponse(status: .notFound, body: "not found: /healthz, /readyz and /metrics are served\n"))
        }
    }

    private func write(_ r: OpsResponse, version: HTTPVersion, keepAlive: Bool, omitBody: Bool,
                       context: ChannelHandlerContext) {
        var body = context.channel.allocator.buffer(capacity: r.body.utf8.count)
        body.writeString(r.body)
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: r.contentType)
        headers.add(name: "Content-Length", value: "\(body.readableBytes)")
        headers.add(name: "Cache-Control", value: "no-store")
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: version, status: r.status, headers: headers))), promise: nil)
        if !omitBody { context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive {
            done.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }
}

#if DEBUG || FLWR_TEST_HOOKS
/// Test-only hooks, compiled into debug builds and into the build scripts/test makes (`-D
/// FLWR_TEST_HOOKS`), never into a plain release build, and answered only when the process runs with
/// FLWR_DEBUG_HOOKS=1: `POST /debug/block-event-loops?seconds=N` blocks every event loop of the
/// process except the one serving this listener for N seconds (at most 300), as a handler stuck in
/// a blocking call would, so a test can watch /healthz turn 503. Shipped builds have no such path.
enum DebugHooks {
    static var enabled: Bool { ProcessInfo.processInfo.environment["FLWR_DEBUG_HOOKS"] == "1" }

    static func response(method: HTTPMethod, uri: String, path: String, group: any EventLoopGroup, loop: any EventLoop) -> EventLoopFuture<OpsResponse>? {
        guard enabled, method == .POST, path == "/debug/block-event-loops" else { return nil }
        let query = uri.split(separator: "?", maxSplits: 1).dropFirst().first.map(String.init) ?? ""
        let seconds = query.split(separator: "&").compactMap { pair -> Double? in
            let kv = pair.split(separator: "=", maxSplits: 1)
            return kv.count == 2 && kv[0] == "seconds" ? Double(kv[1]) : nil
        }.first ?? 30
        let s = min(max(seconds, 0), 300)
        var blocked = 0
        for l in Array(group.makeIterator()) where !(l === loop) {
            blocked += 1
            l.execute { usleep(UInt32(s * 1_000_000)) }
        }
        return loop.makeSucceededFuture(OpsResponse(status: .accepted, body: "blocking \(blocked) event loop(s) for \(s) s\n"))
    }
}
#endif
