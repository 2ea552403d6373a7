// `flwr server`: the federated server (the entrypoint of the server pod): central evaluation,
// checkpoints and resume, the native wire and optionally Flower's protocol, the operations
// listener, and after the last round an optional linger that answers late clients with Finish.
import CIFARLoader
import FedAvg
import FlowerCompat
import FlowerCore
import FlowerLearning
import FlowerWire
import Foundation
import Logging
import Privacy

/// Everything a server needs, in plain values.
public struct ServerRuntimeConfig: Sendable {
    /// Host, port, frame and connection limits of the native wire (token and TLS come from `security`).
    public var wire: WireServerConfig
    public var security = ServerSecurityConfig()
    public var federation = FederationSettings()
    public var strategy = StrategySettings()
    public var dpFedAvg: DPFedAvgConfig?
    /// Connected clients to wait for before each round.
    public var minClients = 10
    public var waitTimeout: Duration = .seconds(600)
    /// The dataset whose test set is evaluated after every round; "none" for federated evaluation.
    public var dataset = "fashion-mnist"
    public var dataDir: String?
    public var files = DataFiles()
    public var maxTestExamples: Int?
    public var checkpointDir: String?
    public var resume = false
    /// history.jsonl, the final model (.npz) and the accuracy plot (.svg).
    public var metricsOut: String?
    public var modelOut: String?
    public var plotOut: String?
    /// Training settings sent to every client in FitIns.
    public var fitConfig: Config = [:]
    /// After the last round, answer late clients with Finish until SIGTERM.
    public var linger = false
    /// Threads of central evaluation.
    public var threads = ProcessInfo.processInfo.activeProcessorCount
    public var model: ModelSelection
    /// Start from these weights (.npz) instead of a seeded initialisation.
    public var initialModel: String?
    public var ops = OpsConfig()
    public var tensorboardDir: String?
    public var readyWhenMinClients = false
    /// Flower's legacy gRPC protocol beside the wire (host and reference are filled in at start).
    public var flower: FlowerCompatServerConfig?

    /// Asynchronous FedBuff on the real clock (`--mode async`); nil: synchronous rounds.
    public var fedBuff: FedBuffConfig?

    /// Why `fedBuff` cannot run with the other settings, or nil (FedBuff replaces the strategy's
    /// server-side aggregation and assumes no synchronous round; its own ranges are `validate()`'s).
    public var asyncProblem: String? {
        guard fedBuff != nil else { return nil }
        if !["fedavg", "fedprox"].contains(strategy.name) {
            return "--mode async applies FedBuff's own staleness-weighted average of the buffered updates, so the server-side aggregation of --strategy \(strategy.name) has no place in it; use --strategy fedavg (or fedprox, whose proximal term is on the clients) or --mode sync"
        }
        if dpFedAvg != nil {
            return "DP-FedAvg's accountant assumes synchronous rounds of Poisson-sampled clients; --mode async has neither: drop --dp-noise-multiplier or use --mode sync"
        }
        if strategy.secureAggregation != nil {
            return "secure aggregation masks a synchronous round of clients together; --mode async aggregates clients one by one: drop --secagg or use --mode sync"
        }
        if flower != nil {
            return "--mode async drives clients over FlowerWire only; drop --flower-port or use --mode sync"
        }
        return nil
    }

    public init(wire: WireServerConfig, model: ModelSelection) {
        self.wire = wire
        self.model = model
    }

    var checkpointPath: String? { checkpointDir.map { ($0 as NSString).appendingPathComponent("checkpoint.flwr") } }
}

/// A weights file given without a model to check it against.
public struct InitialModelError: Error, CustomStringConvertible {
    public init() {}
    public var description: String {
        "--initial-model needs --dataset (not none): the weights are checked against the model built for it"
    }
}

/// The federated server process.
public struct ServerRuntime {
    public let config: ServerRuntimeConfig
    public let logger: Logger

    public init(config: ServerRuntimeConfig, logger: Logger) {
        self.config = config
        self.logger = logger
    }

    /// Serves every round (then lingers if asked); returns the summary, or nil when a signal stopped it.
    @discardableResult
    public func run() async throws -> FitSummary? {
        let c = config
        try c.validate()
        if let problem = c.asyncProblem { throw ExitMessage(error: ServerError.invalidArgument(problem)) }
        let manager = InMemoryClientManager(maxClients: c.wire.maxClients)
        let serverOps = try await ServerOps(ops: c.ops, tensorboardDir: c.tensorboardDir, host: c.wire.host,
                                            readyWhenMinClients: c.readyWhenMinClients, minClients: c.minClients,
                                            manager: manager, logger: logger)
        var evaluation = try CentralEvaluation.load(dataset: c.dataset, dataDir: c.dataDir, files: c.files,
                                                    maxTestExamples: c.maxTestExamples, model: c.model,
                                                    threads: c.threads, seed: c.federation.seed, logger: logger)
        if let path = c.initialModel {
            guard let layout = evaluation?.initialParameters.layout.map({ (name: $0.name, shape: $0.shape) }) else {
                throw InitialModelError()
            }
            evaluation?.initialParameters = try loadWeights(path, layout: layout)
            logger.info("initial model from \(path) (\(layout.count) tensors, names and shapes checked)")
        }
        let checkpoint = try loadCheckpoint()
        var wireConfig = c.wire
        try c.security.apply(to: &wireConfig, logger: logger)
        if let layout = evaluation?.initialParameters.layout.map({ (name: $0.name, shape: $0.shape) }) {
            wireConfig.model = modelFingerprint(label: c.model.label, layout: layout)
        }
        let wire = WireServer(config: wireConfig, manager: manager, logger: logger)
        let port = try await wire.start()
        serverOps.listening(wire: wire, manager: manager)
        let flowerListener = try await startFlower(manager: manager, reference: evaluation?.initialParameters, slots: wire.slots)
        logger.info("listening on \(c.wire.host):\(port); waiting for \(c.minClients) clients")

        let base = c.federation.fedAvg(minClients: c.minClients, initialParameters: evaluation?.initialParameters,
                                       fitConfig: c.fitConfig, evaluateFn: evaluation?.evaluateFn)
        let strategy = try StrategyCatalog.withDP(StrategyCatalog.make(c.strategy, base: base), c.dpFedAvg, logger: logger)
        var serverOptions = c.strategy.apply(to: ServerOptions(
            waitTimeout: c.waitTimeout, roundAttempts: c.federation.roundAttempts,
            historyPath: c.metricsOut, checkpointPath: c.checkpointPath))
        serverOptions.observer = serverOps.observer
        serverOps.metrics.start(plannedRounds: c.federation.rounds, completed: checkpoint?.round ?? 0)
        let server = Server(clientManager: manager, strategy: strategy, options: serverOptions, logger: logger)
        let rounds = c.federation.rounds, timeout = c.federation.roundTimeout
        let fedBuff = c.fedBuff.map { FedBuffServer(server: server, config: $0, model: nil, logger: logger) }
        let outcome = await runUntilSignal {
            if let fedBuff { try await fedBuff.fit(numUpdates: rounds, timeout: timeout, resumingFrom: checkpoint) }
            else { try await server.fit(numRounds: rounds, timeout: timeout, resumingFrom: checkpoint) }
        }
        switch outcome {
        case .finished(let summary):
            try writeOutputs(summary)
            if let reason = summary.stopReason { logger.notice("stopped early: \(reason)") }
            if c.linger { await Linger.untilSignal(manager: manager, rounds: summary.roundsCompleted, logger: logger) }
            await wire.stop()
            await flowerListener?.stop()
            return summary
        case .failed(let error):
            await wire.stop()
            await flowerListener?.stop()
            throw ExitMessage(error: error)
        case .signalled(let signal):
            logger.notice("stopping on \(signal); the checkpoint of the last completed round is kept")
            await wire.stop()
            await flowerListener?.stop()
            return nil
        }
    }

    private func loadCheckpoint() throws -> Checkpoint? {
        try resumeCheckpoint(directory: config.checkpointDir, path: config.checkpointPath, resume: config.resume, logger: logger)
    }

    private func writeOutputs(_ summary: FitSummary) throws {
        if let line = summary.history.worstSiteEpsilonSummary { logger.notice("\(line)") }
        if let path = config.modelOut {
            try writeModel(summary.parameters, to: path)
            logger.info("final model written to \(path)")
        }
        if let path = config.plotOut {
            try HistoryPlot().write(summary.history, to: path)
        }
    }

    /// Starts the Flower-protocol listener when configured; nil otherwise.
    /// `slots`: the wire's payload slots, so --max-buffered-payloads bounds both ports together.
    private func startFlower(manager: any ClientManager, reference: Parameters?, slots: PayloadSlots) async throws -> FlowerCompatServer? {
        guard var flower = config.flower else { return nil }
        flower.host = config.wire.host
        flower.reference = reference
        flower.payloadSlots = slots
        let server = try FlowerCompatServer(config: flower, manager: manager, logger: logger)
        let bound = try await server.start()
        logger.info("Flower protocol (FlowerService/Join) on \(flower.host):\(bound)\(flower.tls == nil ? "" : " with TLS"); messages up to \(flower.maxMessageBytes >> 20) MB")
        // Flower's legacy protocol has no client authentication (neither has its start_server).
        logger.warning("Flower clients are not authenticated (Flower's legacy protocol has none): any client that can reach port \(bound) may join; keep it on a trusted network\(flower.tls == nil ? " and consider --flower-tls-cert" : "")")
        return server
    }
}

/// The checkpoint a run with `--checkpoint-dir directory` continues from: the folder is created,
/// and under `resume` the checkpoint at `path` is read (nil, logged, when none was written yet);
/// nil without `resume`. Shared by `flwr server` and `flwr simulate`.
func resumeCheckpoint(directory: String?, path: String?, resume: Bool, logger: Logger) throws -> Checkpoint? {
    guard let directory, let path else { return nil }
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    guard resume else { return nil }
    guard FileManager.default.fileExists(atPath: path) else {
        logger.info("--resume: no checkpoint at \(path) yet; starting at round 1")
        return nil
    }
    let c = try Checkpoint.read(from: path)
    logger.info("resuming from \(path): round \(c.round) completed")
    return c
}
