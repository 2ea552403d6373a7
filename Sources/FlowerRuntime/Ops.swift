// Operations wiring of the server and client runtimes: the FlowerOps HTTP listener (/healthz,
// /readyz, /metrics) on the wire's event loops, the metrics the round loop and the client feed,
// and the TensorBoard event file.
import FlowerCore
import FlowerOps
import FlowerWire
import Foundation
import Logging
import Synchronization

/// Where the operations listener binds; `port` nil: no listener.
public struct OpsConfig: Sendable, Equatable {
    public var port: Int?
    /// The bind address (nil: the runtime's default: the server's host, 0.0.0.0 on a client).
    public var host: String?

    public init(port: Int? = nil, host: String? = nil) {
        self.port = port
        self.host = host
    }

    /// Starts the listener when a port is set; nil otherwise.
    func start(defaultHost: String, readiness: @escaping @Sendable () -> Readiness, factory: FlwrMetricsFactory,
               logger: Logger) async throws -> OpsHTTPServer? {
        guard let port else { return nil }
        let endpoints = OpsEndpoints(liveness: LivenessCheck(group: WireEventLoops.group), readiness: readiness,
                                     metrics: { factory.exposition() })
        let server = OpsHTTPServer(endpoints: endpoints, group: WireEventLoops.group, logger: logger)
        _ = try await server.start(host: host ?? defaultHost, port: port)
        return server
    }
}

/// The process's metrics: one factory, also installed as swift-metrics' global backend so that
/// any library emitting through swift-metrics lands on the same /metrics page.
public enum ProcessMetrics {
    public static let factory: FlwrMetricsFactory = {
        let f = FlwrMetricsFactory()
        f.installAsGlobalBackend()
        return f
    }()
}

/// What a server runs besides the round loop: metrics, the HTTP listener, TensorBoard.
final class ServerOps: Sendable {
    let metrics: ServerMetrics
    let board: TensorBoardWriter?
    /// The listener (nil without a port); it serves until the process exits.
    let http: OpsHTTPServer?
    private let listening = Flag()

    /// A boolean shared with the readiness closure.
    final class Flag: Sendable {
        let on = Mutex(false)
    }

    /// Starts the HTTP listener (if configured) before anything else, so probes answer while
    /// the server loads its data: /readyz is 503 until `listening(wire:manager:)`.
    init(ops: OpsConfig, tensorboardDir: String?, host: String, readyWhenMinClients: Bool, minClients: Int,
         manager: InMemoryClientManager, logger: Logger) async throws {
        let factory = ProcessMetrics.factory
        metrics = ServerMetrics(factory: factory)
        board = try tensorBoardWriter(directory: tensorboardDir, logger: logger)
        let listening = self.listening
        http = try await ops.start(defaultHost: host, readiness: {
            guard listening.on.withLock({ $0 }) else { return .notReady("the server is not listening for clients yet") }
            let n = manager.count
            if readyWhenMinClients && n < minClients {
                return .notReady("\(n) of the \(minClients) clients needed (--min-clients) are connected")
            }
            return .ready
        }, factory: factory, logger: logger)
    }

    /// The wire is listening: readiness can turn green, and scrapes read its counters.
    func listening(wire: WireServer, manager: InMemoryClientManager) {
        let metrics = self.metrics
        ProcessMetrics.factory.onScrape {
            metrics.setClientsConnected(manager.count)
            metrics.setWireTotals(received: wire.bytesIn, sent: wire.bytesOut)
        }
        listening.on.withLock { $0 = true }
    }

    /// The observer the round loop reports to.
    var observer: any ServerObserver {
        ServerObservers([metrics] + (board.map { [$0] } ?? []))
    }
}

/// What a client runs besides the wire client: metrics, connection state, the HTTP listener.
struct ClientOps {
    let state: ClientConnectionState
    let metrics: ClientMetrics
    /// The listener (nil without a port); it serves until the process exits.
    let http: OpsHTTPServer?

    /// Creates the client's metrics and starts the listener (if configured) before the data
    /// loads, so probes and scrapes answer from the start.
    init(ops: OpsConfig, logger: Logger) async throws {
        let factory = ProcessMetrics.factory
        let state = ClientConnectionState(factory: factory)
        self.state = state
        metrics = ClientMetrics(factory: factory)
        http = try await ops.start(defaultHost: "0.0.0.0", readiness: { state.readiness }, factory: factory, logger: logger)
    }

    /// `client` with its work counted on /metrics (and data-level ε reported to the server).
    func instrument(_ client: any Client, defaultEpochs: Int, epsilon: Double?) -> any Client {
        InstrumentedClient(client, defaultEpochs: defaultEpochs, epsilon: epsilon, metrics: metrics)
    }

    /// Sets the wire client's session hook to track readiness.
    func observe(_ config: inout WireClientConfig) {
        let state = self.state
        config.onSessionChange = { connected in
            state.set(connected: connected, detail: connected ? "" : "the session with the server ended; reconnecting")
        }
    }
}
