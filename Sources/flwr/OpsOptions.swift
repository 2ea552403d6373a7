// Operations flags (--http-port, --ready-when-min-clients, --tensorboard-dir) and their wiring:
// the FlowerOps HTTP listener on the wire's event loops, the metrics the round loop and the
// client feed, and the TensorBoard event file.
import ArgumentParser
import FlowerCore
import FlowerOps
import FlowerWire
import Foundation
import Logging
import Synchronization

/// `--http-port` and its bind address, on `flwr server` and `flwr client`.
struct OpsOptions: ParsableArguments {
    @Option(help: "Serve GET /healthz, /readyz and /metrics (Prometheus) over HTTP on this port (off when absent; 0: any free port).")
    var httpPort: Int?

    @Option(help: "Address the --http-port listener binds (default: --host on the server, 0.0.0.0 on a client).")
    var httpHost: String?

    func validate() throws {
        if let p = httpPort, !(0 ... 65535).contains(p) {
            throw ValidationError("--http-port must be in 0...65535, got \(p)")
        }
        if httpHost != nil && httpPort == nil { throw ValidationError("--http-host needs --http-port") }
    }

    /// Starts the listener when --http-port is set; nil otherwise.
    func start(defaultHost: String, readiness: @escaping @Sendable () -> Readiness, factory: FlwrMetricsFactory,
               logger: Logger) async throws -> OpsHTTPServer? {
        guard let port = httpPort else { return nil }
        let endpoints = OpsEndpoints(liveness: LivenessCheck(group: WireEventLoops.group), readiness: readiness,
                                     metrics: { factory.exposition() })
        let server = OpsHTTPServer(endpoints: endpoints, group: WireEventLoops.group, logger: logger)
        _ = try await server.start(host: httpHost ?? defaultHost, port: port)
        return server
    }
}

/// `--tensorboard-dir` on `flwr server`, `simulate` and `train`.
struct TensorBoardOptions: ParsableArguments {
    @Option(help: "Write the per-round (train: per-epoch) history as TensorBoard event files into this folder: scalars accuracy, loss, round_seconds and, with differential privacy, epsilon.")
    var tensorboardDir: String?

    /// The writer, when --tensorboard-dir is set.
    func writer(logger: Logger) throws -> TensorBoardWriter? {
        guard let dir = tensorboardDir else { return nil }
        let w = try TensorBoardWriter(directory: dir, logger: logger)
        logger.info("TensorBoard events: \(w.path) (tensorboard --logdir \(dir))")
        return w
    }
}

/// The process's metrics: one factory, also installed as swift-metrics' global backend so that
/// any library emitting through swift-metrics lands on the same /metrics page.
enum ProcessMetrics {
    static let factory: FlwrMetricsFactory = {
        let f = FlwrMetricsFactory()
        f.installAsGlobalBackend()
        return f
    }()
}

/// What `flwr server` runs besides the round loop: metrics, the HTTP listener, TensorBoard.
final class ServerOps: Sendable {
    let metrics: ServerMetrics
    let board: TensorBoardWriter?
    /// The listener (nil without --http-port); it serves until the process exits.
    let http: OpsHTTPServer?
    private let listening = Flag()

    /// A boolean shared with the readiness closure.
    final class Flag: Sendable {
        let on = Mutex(false)
    }

    /// Starts the HTTP listener (if --http-port) before anything else, so probes answer while
    /// the server loads its data: /readyz is 503 until `listening(wire:manager:)`.
    init(ops: OpsOptions, tensorboard: TensorBoardOptions, host: String, readyWhenMinClients: Bool, minClients: Int,
         manager: InMemoryClientManager, logger: Logger) async throws {
        let factory = ProcessMetrics.factory
        metrics = ServerMetrics(factory: factory)
        board = try tensorboard.writer(logger: logger)
        let listening = self.listening
        let server = try await ops.start(defaultHost: host, readiness: {
            guard listening.on.withLock({ $0 }) else { return .notReady("the server is not listening for clients yet") }
            let n = manager.count
            if readyWhenMinClients && n < minClients {
                return .notReady("\(n) of the \(minClients) clients needed (--min-clients) are connected")
            }
            return .ready
        }, factory: factory, logger: logger)
        http = server
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

/// What `flwr client` runs besides the wire client: metrics, connection state, the HTTP listener.
struct ClientOps {
    let state: ClientConnectionState
    let metrics: ClientMetrics
    /// The listener (nil without --http-port); it serves until the process exits.
    let http: OpsHTTPServer?

    /// Creates the client's metrics and starts the listener (if --http-port) before the data
    /// loads, so probes and scrapes answer from the start.
    init(ops: OpsOptions, logger: Logger) async throws {
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
