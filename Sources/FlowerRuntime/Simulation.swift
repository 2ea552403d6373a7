// `flwr simulate`: a whole federation in one process, over the same round loop as a deployment
// (the chosen strategy, central evaluation after every round), reaching its clients either over
// FlowerWire on loopback (`tcp`) or in process (`virtual`, VirtualClients.swift).
import Attacks
import CIFARLoader
import CNNModel
import FedAvg
import FlowerCore
import FlowerLearning
import FlowerOps
import FlowerWire
import Foundation
import Logging
import Privacy
import Synchronization

/// Everything a simulation needs, in plain values.
public struct SimulationConfig: Sendable {
    public var dataset: DatasetLocation
    public var clients = 10
    public var rounds = 5
    /// Dirichlet α of the non-IID split; 0 for IID.
    public var alpha = 0.5
    /// Sizes of the IID split (α = 0); a Dirichlet split draws its own.
    public var partitionSizes: PartitionSizes = .equal
    public var seed: UInt64 = 42
    /// Local training; its seed is replaced by `seed`.
    public var training = TrainingDefaults()
    /// Threads per client (nil: cores / parallel).
    public var threads: Int?
    public var fractionFit = 1.0
    /// Clients sampled per round (uniformly, without replacement); overrides `fractionFit`.
    public var clientsPerRound: Int?
    /// How training clients are drawn each round (DP-FedAvg always samples Poisson).
    public var sampling: SamplingKind = .uniform
    /// A progress bar redrawn in place on standard error (a terminal) instead of progress log lines (virtual clients).
    public var progressBar = false
    /// How clients are reached (nil: `SimulationTransport.automatic(clients:)`).
    public var transport: SimulationTransport?
    public var roundTimeout: Duration = .seconds(600)
    /// How long the server waits for all clients to connect before each round.
    public var waitTimeout: Duration = .seconds(60)
    /// Clients training at the same time (nil: one per core).
    public var parallel: Int?
    public var maxTrainExamples: Int?
    public var maxTestExamples: Int?
    public var privacy = DataPrivacy()
    public var strategy = StrategySettings()
    /// Partitions 0..<malicious run `attack`.
    public var malicious = 0
    public var attack: AttackSettings?
    public var dpFedAvg: DPFedAvgConfig?
    /// Record-level DP-SGD on every site (each with its own ledger under `out/privacy`); nil: plain SGD.
    public var dpSGD: DPSGDOptions?
    /// Output folder: history.jsonl, model.npz, accuracy.svg, privacy/.
    public var out = "flwr-out"
    public var model: ModelSelection
    public var tensorboardDir: String?
    /// How clients encode their fit updates on the wire (tcp transport only).
    public var updateCompression: UpdateCompression = .none
    /// How the server sends the model to clients (tcp transport only).
    public var broadcastCompression: BroadcastCompression = .none
    /// Whether zlib may be negotiated on the wire, used on a frame when it pays (tcp transport only).
    public var zlib = true
    /// Virtual clock (virtual clients only; `SystemModel`): each client's compute-time factor.
    public var clientSpeed: LogNormal?
    /// Virtual clock: each client's link rate, Mbit/s.
    public var linkMbps: LogNormal?
    /// Virtual clock: probability that a client is online in a round (1: always).
    public var clientAvailability = 1.0
    /// Virtual clock: seconds one example takes for one local epoch on a client of speed factor 1.
    public var secondsPerExample = 0.001
    /// Synchronous rounds (`Server`) or asynchronous FedBuff updates (`FedBuffServer`).
    public var mode: SimulationMode = .sync
    /// FedBuff's settings under `mode == .async`.
    public var fedBuff = FedBuffConfig(concurrency: 10, bufferSize: 10)
    /// Folder of the checkpoint written after every round (`mode == .async`: every server update); nil: none.
    public var checkpointDir: String?
    /// Continue after the last round (or update) of the checkpoint in `checkpointDir`, when there is one.
    public var resume = false

    public init(dataset: DatasetLocation, model: ModelSelection) {
        self.dataset = dataset
        self.model = model
    }

    /// The transport used: the one asked for, else tcp up to 100 clients and virtual above.
    public var resolvedTransport: SimulationTransport { transport ?? .automatic(clients: clients) }

    /// Poisson sampling's q: M/N under `clientsPerRound`, else `fractionFit`.
    public var poissonRate: Double {
        clientsPerRound.map { min(1, Double($0) / Double(clients)) } ?? fractionFit
    }

    /// Whether rounds run on the virtual clock (a heterogeneity option was given).
    public var usesVirtualClock: Bool { clientSpeed != nil || linkMbps != nil || clientAvailability < 1 || mode == .async }

    /// The checkpoint file in `checkpointDir`.
    public var checkpointPath: String? { checkpointDir.map { ($0 as NSString).appendingPathComponent("checkpoint.flwr") } }

    /// Why `--checkpoint-dir`/`--resume` cannot run as given, or nil.
    public static func checkpointProblem(checkpointDir: String?, resume: Bool) -> String? {
        resume && checkpointDir == nil
            ? "--resume continues from the checkpoint in --checkpoint-dir: give the --checkpoint-dir of the interrupted run"
            : nil
    }

    /// FedAvg's `fractionFit`: `clientsPerRound` as a fraction that samples exactly that many, else `fractionFit`.
    public var samplingFraction: Double {
        clientsPerRound.map { FlowerRuntime.samplingFraction(clientsPerRound: $0, clients: clients) } ?? fractionFit
    }
}

/// `--sampling`: how a round's training clients are drawn.
public enum SamplingKind: String, Sendable, CaseIterable {
    /// Exactly M (or ⌊fraction·N⌋) distinct clients, uniformly without replacement.
    case uniform
    /// Each client independently with probability q = M/N (or the fraction): M on average.
    case poisson
}

/// How a simulation ended: its rounds ran (to the end or to the strategy's stop), or a signal stopped it.
public enum SimulationEnd: Sendable {
    case finished(SimulationResult)
    /// SIGTERM or SIGINT (the signal's name) stopped the rounds.
    case signalled(String)

    /// The shell's status for a process stopped by signal `name`: 128 + its number (SIGINT 130, SIGTERM 143).
    public static func exitStatus(signal name: String) -> Int32 { 128 + (name == "SIGINT" ? SIGINT : SIGTERM) }
}

/// How the server schedules training.
public enum SimulationMode: String, Sendable, CaseIterable {
    /// Rounds: sample, wait for every sampled client, aggregate (FedAvg and the other strategies).
    case sync
    /// FedBuff: C clients always training, a server update every K results (`FedBuffServer`).
    case async
}

/// What a finished simulation produced.
public struct SimulationResult: Sendable {
    public let history: History
    public let stopReason: String?
    public let wallSeconds: Double
    public let historyPath: String, modelPath: String, plotPath: String
    /// How the clients were reached.
    public var transport: SimulationTransport = .tcp
    /// Seconds from the server's start to its last round's end (no loading, no set-up).
    public var roundsSeconds: Double = 0
    /// Seconds the clients' models computed (training, data conversion), summed over the models.
    public var clientComputeSeconds: Double = 0
    /// Models computing at the same time (the pool's size).
    public var workers = 1
    /// Seconds of central evaluation (which uses every core).
    public var evaluationSeconds: Double = 0

    /// The fastest the rounds could have run with no overhead: the clients' compute spread over
    /// the workers, plus central evaluation.
    public var computeFloorSeconds: Double { clientComputeSeconds / Double(max(1, workers)) + evaluationSeconds }

    /// The table of rounds the command prints, with wall time, peak memory, compute and the files written.
    public var report: String {
        let dp = history.rounds.contains { $0.privacy != nil }
        let clock = history.rounds.contains { $0.virtualTime != nil }
        var lines = ["round  accuracy  loss     clients  failures  seconds" + (clock ? "  virtual s" : "") + (dp ? "  epsilon" : "")]
        for r in history.rounds {
            lines.append(String(format: "%5d  %8.4f  %7.4f  %7d  %8d  %7.1f", r.round, r.accuracy ?? .nan, r.loss ?? .nan,
                                r.fitClients, r.failures, r.seconds)
                         + (clock ? String(format: "  %9.1f", r.virtualTime ?? .nan) : "")
                         + (r.privacy.map { String(format: "  %7.3f", $0.epsilon) } ?? ""))
        }
        if let line = history.worstSiteEpsilonSummary { lines.append(line) }
        lines.append(String(format: "wall time %.1f s, peak memory %.0f MB", wallSeconds, peakRSSMegabytes()))
        lines.append("rounds " + String(format: "%.2f", roundsSeconds) + " s (\(transport.rawValue) clients); "
                     + String(format: "compute: clients %.2f s on %d worker(s) + central evaluation %.2f s = floor %.2f s; rounds / floor %.3f",
                            clientComputeSeconds, workers, evaluationSeconds,
                            computeFloorSeconds, computeFloorSeconds > 0 ? roundsSeconds / computeFloorSeconds : Double.nan))
        if let reason = stopReason { lines.append("stopped early: \(reason)") }
        lines.append("wrote \(historyPath), \(modelPath), \(plotPath)")
        return lines.joined(separator: "\n")
    }
}

/// What the rounds of a simulation use: no reference to the loaded dataset (virtual clients
/// share the training examples some client uses, TCP clients hold copies of their partitions).
struct PreparedFederation {
    enum Clients {
        case tcp([any Client])
        case virtual(VirtualFederation)
    }
    let evaluation: CentralEvaluation
    let clients: Clients
    let pool: ModelPool
}

/// Seconds spent in central evaluation, summed.
private final class Stopwatch: Sendable {
    private let total = Mutex<Double>(0)
    func add(_ seconds: Double) { total.withLock { $0 += seconds } }
    var seconds: Double { total.withLock { $0 } }
}

/// A server and N clients on this machine — each on its own TCP connection, or virtual — with
/// the dataset loaded once and at most `parallel` clients training at a time.
public struct Simulation {
    public let config: SimulationConfig
    public let logger: Logger

    public init(config: SimulationConfig, logger: Logger) {
        self.config = config
        self.logger = logger
    }

    /// Runs every round; nil when SIGTERM/SIGINT stopped it. The loaded dataset is dropped once
    /// the clients and the central evaluation have taken their parts, before the first round.
    public func run() async throws -> SimulationResult? {
        if case .finished(let result) = try await runToEnd() { return result }
        return nil
    }

    /// Runs every round, saying which signal stopped it if one did.
    public func runToEnd() async throws -> SimulationEnd {
        let wallStart = ContinuousClock.now
        try config.validate()
        let prepared = try prepareFromDisk()
        return try await run(prepared, wallStart: wallStart)
    }

    /// Runs every round on `split`; nil when SIGTERM/SIGINT stopped it.
    public func run(on split: DatasetSplit) async throws -> SimulationResult? {
        let wallStart = ContinuousClock.now
        try config.validate()
        if case .finished(let result) = try await run(prepare(split), wallStart: wallStart) { return result }
        return nil
    }

    /// Loads the dataset and prepares the federation; the split is a local of this call, so it is
    /// freed when the call returns.
    private func prepareFromDisk() throws -> PreparedFederation {
        let split = try config.dataset.load()
        return try prepare(split)
    }

    /// The clients and central evaluation of a federation over `split`, holding only what the
    /// rounds use.
    func prepare(_ split: DatasetSplit) throws -> PreparedFederation {
        let c = config
        let transport = c.resolvedTransport
        if transport == .virtual && c.privacy.epsilon != nil { throw SimulationError.dataPrivacyNeedsTCP }
        if transport == .virtual && (c.updateCompression != .none || c.broadcastCompression != .none || !c.zlib) {
            throw SimulationError.updateCompressionNeedsTCP
        }
        if transport == .tcp && c.usesVirtualClock { throw SimulationError.virtualClockNeedsVirtual }
        if c.clientAvailability < 1 && c.dpFedAvg != nil {
            throw SimulationError.asyncUnsupported("--client-availability below 1 samples among the clients online, which changes DP-FedAvg's sampling rate q behind its accountant's back; drop one of --client-availability and --dp-noise-multiplier")
        }
        if c.usesVirtualClock && c.strategy.secureAggregation != nil {
            throw SimulationError.asyncUnsupported("the virtual clock does not model secure aggregation's extra message rounds; drop --secagg or the virtual-clock options (--client-speed, --link-mbps, --client-availability, --mode async)")
        }
        if c.mode == .async {
            if !["fedavg", "fedprox"].contains(c.strategy.name) {
                throw SimulationError.asyncUnsupported("--mode async applies FedBuff's own staleness-weighted average of the buffered updates, so the server-side aggregation of --strategy \(c.strategy.name) has no place in it; use --strategy fedavg (or fedprox, whose proximal term is on the clients) or --mode sync")
            }
            if c.dpFedAvg != nil {
                throw SimulationError.asyncUnsupported("DP-FedAvg's accountant assumes synchronous rounds of Poisson-sampled clients; --mode async has neither: drop --dp-noise-multiplier (record-level --dp-sgd works) or use --mode sync")
            }
            if c.strategy.secureAggregation != nil {
                throw SimulationError.asyncUnsupported("secure aggregation masks a synchronous round of clients together; --mode async aggregates clients one by one: drop --secagg or use --mode sync")
            }
            if c.fedBuff.concurrency > c.clients {
                throw SimulationError.asyncUnsupported("--concurrency \(c.fedBuff.concurrency) exceeds --clients \(c.clients); lower --concurrency")
            }
        }
        try FileManager.default.createDirectory(atPath: c.out, withIntermediateDirectories: true)
        var test = split.test
        if let m = c.maxTestExamples, m < test.count { test = test.subset(Array(0 ..< m)) }

        let cores = ProcessInfo.processInfo.activeProcessorCount
        let slots = c.parallel ?? min(cores, c.clients)
        let threadsPerClient = c.threads ?? max(1, cores / slots)
        let selection = c.model
        let evaluation = try CentralEvaluation(test: test, model: selection, threads: cores, seed: c.seed, logger: logger)

        let input = modelInputShape(split.train), classes = split.train.classes
        let seed = c.seed
        let pool = ModelPool(size: slots) { try selection.build(input: input, classes: classes, seed: seed, threads: threadsPerClient) }
        var defaults = c.training
        defaults.seed = seed
        let clients: PreparedFederation.Clients
        switch transport {
        case .virtual:
            let partitions = try VirtualPartitions.make(train: split.train, clients: c.clients, alpha: c.alpha, sizes: c.partitionSizes, seed: seed,
                                                        maxTrainExamples: c.maxTrainExamples, logger: logger)
            clients = .virtual(VirtualFederation(partitions: partitions, pool: pool, defaults: defaults, logger: logger,
                                                 malicious: c.malicious, attack: c.attack, dpSGD: c.dpSGD, out: c.out,
                                                 display: c.progressBar ? .standardErrorBar : .log))
        case .tcp:
            let scheme = try simulationPartitioner(alpha: c.alpha, sizes: c.partitionSizes, clients: c.clients,
                                                   samples: split.train.count, dataset: split.train.name)
            let builder = ClientDataBuilder(numPartitions: c.clients, scheme: scheme, seed: c.seed, privacy: c.privacy,
                                            maxTrainExamples: c.maxTrainExamples, logger: logger)
            let parts = try builder.partitions(of: split)
            var clientObjects: [any Client] = []
            for i in 0 ..< c.clients {
                let ledger = (c.out as NSString).appendingPathComponent("privacy/partition-\(i)")
                let local = try builder.build(split: split, parts: parts, partition: i, ledgerDirectory: ledger)
                let attack = i < c.malicious ? c.attack : nil
                let train = attack == nil ? local.train : LocalData(dataset: AttackPlan.trainingData(local.train.dataset, settings: attack))
                let site = try c.dpSGD.map { try DPSGDSite(options: $0, ledgerDirectory: ledger) }
                let honest = ModelClient(partition: i, train: train, eval: local.eval, pool: pool, defaults: defaults, logger: logger,
                                         dpSGD: site)
                clientObjects.append(AttackPlan.wrap(honest, settings: attack, partition: i))
            }
            clients = .tcp(clientObjects)
        }
        logger.info("\(c.clients) \(transport.rawValue) clients on \(split.train.name) (α \(c.alpha > 0 ? "\(c.alpha)" : c.partitionSizes == .equal ? "IID" : "IID, \(c.partitionSizes) sizes")), \(slots) training at a time with \(threadsPerClient) thread(s) each; model \(selection.label)")
        return PreparedFederation(evaluation: evaluation, clients: clients, pool: pool)
    }

    /// Runs the rounds of a prepared federation: one `Server`, whichever way it reaches clients.
    func run(_ prepared: PreparedFederation, wallStart: ContinuousClock.Instant) async throws -> SimulationEnd {
        let c = config, seed = c.seed, selection = c.model
        let evaluation = prepared.evaluation
        let manager = InMemoryClientManager()
        let evaluationTime = Stopwatch()
        var evaluateFn: CentralEvaluateFn?
        if let inner = evaluation.evaluateFn {
            evaluateFn = { @Sendable (round: Int, parameters: Parameters) async throws -> (loss: Double, metrics: Metrics)? in
                let start = ContinuousClock.now
                defer { evaluationTime.add((ContinuousClock.now - start).seconds) }
                return try await inner(round, parameters)
            }
        }
        // Poisson rounds may draw fewer than M; with clients offline, --clients-per-round still
        // samples that many among those online.
        let minFit = c.sampling == .poisson ? 1 : (c.clientAvailability < 1 ? c.clientsPerRound : nil)
        var base = makeFedAvg(fractionFit: c.samplingFraction, minFitClients: minFit, acceptFailures: true, seed: seed,
                              minClients: c.clients, initialParameters: evaluation.initialParameters,
                              fitConfig: [:], evaluateFn: evaluateFn)
        if c.sampling == .poisson, c.dpFedAvg == nil {
            base.sampling = .poisson(rate: c.poissonRate)
            logger.info("Poisson sampling: each client joins a round with probability q = \(c.poissonRate) (\(c.poissonRate * Double(c.clients)) clients on average)")
        }
        let strategy = try StrategyCatalog.withDP(StrategyCatalog.make(c.strategy, base: base), c.dpFedAvg, logger: logger)
        let historyPath = (c.out as NSString).appendingPathComponent("history.jsonl")
        let checkpoint = try resumeCheckpoint(directory: c.checkpointDir, path: c.checkpointPath, resume: c.resume, logger: logger)
        if let checkpoint { try checkResumable(checkpoint, initial: evaluation.initialParameters) }
        var serverOptions = c.strategy.apply(to: ServerOptions(waitTimeout: c.waitTimeout, historyPath: historyPath,
                                                               checkpointPath: c.checkpointPath))
        var observers: [any ServerObserver] = []
        if let tb = try tensorBoardWriter(directory: c.tensorboardDir, logger: logger) { observers.append(tb) }
        if case .virtual(let federation) = prepared.clients {
            observers.append(VirtualProgressObserver(federation: federation))
            if c.usesVirtualClock { serverOptions.systemModel = systemModel(federation) }
        }
        serverOptions.observer = observers.isEmpty ? nil : observers.count == 1 ? observers[0] : ServerObservers(observers)
        let server = Server(clientManager: manager, strategy: strategy, options: serverOptions, logger: logger)
        let fedBuff: FedBuffServer? = (c.mode == .async ? serverOptions.systemModel : nil).map {
            FedBuffServer(server: server, config: c.fedBuff, model: $0, logger: logger)
        }

        var wire: WireServer?
        var tasks: [Task<Int, any Error>] = []
        let transport: SimulationTransport
        switch prepared.clients {
        case .virtual(let federation):
            transport = .virtual
            for i in 0 ..< federation.count {
                if case .failure(let refusal) = manager.register(federation.proxy(i)) { throw ExitMessage(error: refusal) }
            }
            logger.info("\(federation.count) virtual clients ready; resident memory \(residentMegabytes().map { String(format: "%.1f MB", $0) } ?? "unknown")")
        case .tcp(let clientObjects):
            transport = .tcp
            var wireConfig = WireServerConfig(host: "127.0.0.1", port: 0)
            wireConfig.model = modelFingerprint(label: selection.label, layout: evaluation.initialParameters.layout.map { ($0.name, $0.shape) })
            wireConfig.updateCompression = c.updateCompression
            wireConfig.broadcastCompression = c.broadcastCompression
            wireConfig.compressionAllowed = c.zlib
            let wireServer = WireServer(config: wireConfig, manager: manager, logger: logger)
            wire = wireServer
            let port = try await wireServer.start()
            let clientLogger = Logger(label: "flwr.client")
            let clientModel = wireConfig.model
            let epochs = c.training.epochs, epsilon = c.privacy.epsilon
            tasks = clientObjects.enumerated().map { i, client in
                Task {
                    var config = WireClientConfig(host: "127.0.0.1", port: port, clientID: "partition-\(i)", partition: i)
                    config.retry.seed = seed &+ UInt64(i)
                    config.updateSeed = seed &+ UInt64(i)
                    config.model = clientModel
                    let wireConfig = config
                    // Reports data-level ε in its fit metrics (RoundEpsilon), for history and TensorBoard.
                    let reporting = InstrumentedClient(client, defaultEpochs: epochs, epsilon: epsilon,
                                                       metrics: ClientMetrics(factory: FlwrMetricsFactory()))
                    return try await WireClient.run(config: wireConfig, client: reporting, logger: clientLogger)
                }
            }
        }
        let rounds = c.rounds, timeout = c.roundTimeout
        let roundsStart = ContinuousClock.now
        let outcome = await runUntilSignal {
            if let fedBuff { try await fedBuff.fit(numUpdates: rounds, timeout: timeout, resumingFrom: checkpoint) }
            else { try await server.fit(numRounds: rounds, timeout: timeout, resumingFrom: checkpoint) }
        }
        let roundsSeconds = (ContinuousClock.now - roundsStart).seconds
        // The server is done (finished, failed or signalled): close every connection first, then
        // end the clients. A client that never joined (or joined after the server gave up) would
        // otherwise retry forever, and awaiting it would hang the command.
        await wire?.stop()
        for t in tasks { t.cancel() }
        for t in tasks { _ = try? await t.value }

        switch outcome {
        case .finished(let summary):
            let modelPath = (c.out as NSString).appendingPathComponent("model.npz")
            let plotPath = (c.out as NSString).appendingPathComponent("accuracy.svg")
            try writeModel(summary.parameters, to: modelPath)
            try HistoryPlot().write(summary.history, to: plotPath)
            var result = SimulationResult(history: summary.history, stopReason: summary.stopReason,
                                          wallSeconds: (ContinuousClock.now - wallStart).seconds,
                                          historyPath: historyPath, modelPath: modelPath, plotPath: plotPath)
            result.transport = transport
            result.roundsSeconds = roundsSeconds
            result.clientComputeSeconds = prepared.pool.busySeconds
            result.workers = prepared.pool.capacity
            result.evaluationSeconds = evaluationTime.seconds
            return .finished(result)
        case .failed(let error):
            throw ExitMessage(error: error)
        case .signalled(let name):
            if let path = c.checkpointPath, let kept = try? Checkpoint.read(from: path) {
                logger.notice("stopped on \(name); the checkpoint of \(c.mode == .async ? "update" : "round") \(kept.round) is kept in \(path): continue with --resume")
            } else {
                logger.notice("stopped on \(name)")
            }
            return .signalled(name)
        }
    }
}

extension Simulation {
    /// Refuses to resume from `checkpoint` when this run could not continue it: another model
    /// (layout), the other `--mode`, or the virtual clock switched on or off.
    func checkResumable(_ checkpoint: Checkpoint, initial: Parameters) throws {
        let path = config.checkpointPath ?? "the checkpoint"
        if let why = checkpoint.parameters.layoutMismatch(against: initial) {
            throw SimulationError.resumeRefused("\(path) holds a model laid out differently from this run's (\(why)): resume with the interrupted run's --model, --dataset and model flags, or start over without --resume")
        }
        guard let last = checkpoint.history.rounds.last else { return }
        let wasAsync = last.staleness != nil
        if wasAsync != (config.mode == .async) {
            throw SimulationError.resumeRefused("\(path) was written by a --mode \(wasAsync ? "async" : "sync") run (its \(checkpoint.round) \(wasAsync ? "server updates" : "rounds")); resume it with --mode \(wasAsync ? "async" : "sync"), or start over without --resume")
        }
        if (last.virtualTime != nil) != config.usesVirtualClock {
            throw SimulationError.resumeRefused("\(path) was written \(last.virtualTime != nil ? "on" : "without") the virtual clock; resume with the interrupted run's --client-speed, --link-mbps and --client-availability, or start over without --resume")
        }
    }

    /// The virtual clock's cost model of `federation` under this configuration.
    func systemModel(_ federation: VirtualFederation) -> SystemModel {
        let c = config
        let partitions = federation.partitions
        return SystemModel(seed: c.seed, speed: c.clientSpeed, linkMbps: c.linkMbps, availability: c.clientAvailability,
                           secondsPerExample: c.secondsPerExample, epochs: c.training.epochs,
                           examples: { client in
            guard let i = client.partition, i >= 0, i < partitions.clients else { return 0 }
            return partitions.examples(of: i).count
        })
    }
}

/// The TensorBoard event writer for `directory`, when given.
public func tensorBoardWriter(directory: String?, logger: Logger) throws -> TensorBoardWriter? {
    guard let dir = directory else { return nil }
    let w = try TensorBoardWriter(directory: dir, logger: logger)
    logger.info("TensorBoard events: \(w.path) (tensorboard --logdir \(dir))")
    return w
}
