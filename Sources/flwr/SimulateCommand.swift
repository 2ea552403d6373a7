import ArgumentParser
import CIFARLoader
import CNNModel
import FlowerLearning
import FedAvg
import FlowerCore
import FlowerOps
import FlowerWire
import Foundation
import Logging

/// `flwr simulate`: a server and N clients on this machine, over real TCP connections.
struct SimulateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Run a whole federation on this machine: the server and N clients, each on its own TCP connection.",
        discussion: """
            The same code paths as a deployment (FlowerWire over loopback, FedAvg, central \
            evaluation on the test set after every round), in one process: the dataset is loaded \
            once and at most --parallel clients train at a time so the cores are not oversubscribed. \
            Writes DIR/history.jsonl, DIR/model.npz and DIR/accuracy.svg.
            """)

    @Option(help: "Number of clients (partitions).")
    var clients: Int = 10

    @Option(help: "Federated rounds to run.")
    var rounds: Int = 5

    @OptionGroup var source: DatasetSource

    @Option(help: "Dirichlet α of the non-IID split (0.1 very skewed, 1000 nearly IID; the same split as Flower Datasets' DirichletPartitioner for the same --seed); 0 for an IID split.")
    var alpha: Double = 0.5

    @Option(help: "Seed of the split, the initial model, sampling and shuffling.")
    var seed: UInt64 = 42

    @OptionGroup var training: TrainingOptions

    @Option(help: "Fraction of clients sampled for training each round.")
    var fractionFit: Double = 1.0

    @Option(help: "Seconds each round waits for results.")
    var roundTimeout: Double = 600

    @Option(help: "Clients training at the same time (default: one per core; each gets cores/parallel threads).")
    var parallel: Int?

    @Option(help: "Train each client on at most this many examples of its partition.")
    var maxTrainExamples: Int?

    @Option(help: "Evaluate on at most this many test images.")
    var maxTestExamples: Int?

    @OptionGroup var privacy: PrivacyOptions
    @OptionGroup var strategyOptions: StrategyOptions
    @OptionGroup var attacks: SimulationAttackOptions
    @OptionGroup var dpFedAvg: DPFedAvgOptions

    @Option(help: "Output folder for history.jsonl, model.npz and accuracy.svg.")
    var out: String = "flwr-out"

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var log: LogOptions
    @OptionGroup var tensorboard: TensorBoardOptions
    @OptionGroup(title: "Record-level DP-SGD on every site") var dpSGD: DPSGDFlags

    func validate() throws {
        guard clients >= 1 else { throw ValidationError("--clients must be at least 1, got \(clients)") }
        guard rounds >= 1 else { throw ValidationError("--rounds must be at least 1, got \(rounds)") }
        guard alpha >= 0 && alpha.isFinite else { throw ValidationError("--alpha must be 0 (IID) or positive, got \(alpha)") }
        guard fractionFit > 0 && fractionFit <= 1 else { throw ValidationError("--fraction-fit must be in (0, 1], got \(fractionFit)") }
        if let p = parallel, p < 1 { throw ValidationError("--parallel must be at least 1, got \(p)") }
        if let m = maxTrainExamples, m < 1 { throw ValidationError("--max-train-examples must be at least 1, got \(m)") }
        try dpSGD.validateForSites()
    }

    func run() async throws {
        let logger = log.bootstrap(label: "flwr.simulate")
        let wallStart = ContinuousClock.now
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let split = try source.load()
        var test = split.test
        if let m = maxTestExamples, m < test.count { test = test.subset(Array(0 ..< m)) }

        let cores = ProcessInfo.processInfo.activeProcessorCount
        let slots = parallel ?? min(cores, clients)
        let threadsPerClient = training.threads ?? max(1, cores / slots)
        let selection = try modelOptions.selection()
        let evaluation = try CentralEvaluation(test: test, model: selection, threads: cores, seed: seed, logger: logger)

        let scheme: Partitioner = alpha > 0 ? .dirichlet(alpha: alpha, minPartitionSize: 10) : .iid
        let builder = ClientDataBuilder(numPartitions: clients, scheme: scheme, seed: seed, privacy: privacy, maxTrainExamples: maxTrainExamples, logger: logger)
        let input = modelInputShape(split.train), classes = split.train.classes
        let pool = ModelPool(size: slots) { try selection.build(input: input, classes: classes, seed: seed, threads: threadsPerClient) }
        let defaults = training.defaults(seed: seed)
        let parts = try builder.partitions(of: split)
        var clientObjects: [any Client] = []
        for i in 0 ..< clients {
            let ledger = (out as NSString).appendingPathComponent("privacy/partition-\(i)")
            let local = try builder.build(split: split, parts: parts, partition: i, ledgerDirectory: ledger)
            let bad = attacks.isMalicious(i)
            let train = bad ? LocalData(dataset: attacks.attack.trainingData(local.train.dataset)) : local.train
            let site = try dpSGD.options.map { try DPSGDSite(options: $0, ledgerDirectory: ledger) }
            let honest = ModelClient(partition: i, train: train, eval: local.eval, pool: pool, defaults: defaults, logger: logger, dpSGD: site)
            clientObjects.append(bad ? attacks.attack.wrap(honest, partition: i, seed: seed) : honest)
        }
        logger.info("\(clients) clients on \(split.train.name) (α \(alpha > 0 ? "\(alpha)" : "IID")), \(slots) training at a time with \(threadsPerClient) thread(s) each; model \(selection.label)")

        let manager = InMemoryClientManager()
        var wireConfig = WireServerConfig(host: "127.0.0.1", port: 0)
        wireConfig.model = modelFingerprint(label: selection.label, layout: evaluation.initialParameters.layout.map { ($0.name, $0.shape) })
        let wire = WireServer(config: wireConfig, manager: manager, logger: logger)
        let port = try await wire.start()
        let strategy = try dpFedAvg.wrap(strategyOptions.make(base: makeFedAvg(fractionFit: fractionFit, minFitClients: nil, acceptFailures: true, seed: seed,
                                  minClients: clients, initialParameters: evaluation.initialParameters,
                                  fitConfig: [:], evaluateFn: evaluation.evaluateFn)), samplingRate: fractionFit, logger: logger)
        let timeout = Duration.milliseconds(Int64(roundTimeout * 1000))
        let historyPath = (out as NSString).appendingPathComponent("history.jsonl")
        var serverOptions = strategyOptions.apply(to: ServerOptions(waitTimeout: .seconds(60), historyPath: historyPath))
        serverOptions.observer = try tensorboard.writer(logger: logger)
        let server = Server(clientManager: manager, strategy: strategy, options: serverOptions, logger: logger)

        let clientLogger = Logger(label: "flwr.client")
        let clientModel = wireConfig.model
        let tasks = clientObjects.enumerated().map { i, client in
            Task {
                var config = WireClientConfig(host: "127.0.0.1", port: port, clientID: "partition-\(i)", partition: i)
                config.retry.seed = seed &+ UInt64(i)
                config.model = clientModel
                let wireConfig = config
                // Reports data-level ε in its fit metrics (RoundEpsilon), for history and TensorBoard.
                let reporting = InstrumentedClient(client, defaultEpochs: training.epochs, epsilon: privacy.dpEpsilon,
                                                   metrics: ClientMetrics(factory: FlwrMetricsFactory()))
                return try await WireClient.run(config: wireConfig, client: reporting, logger: clientLogger)
            }
        }
        let outcome = await runUntilSignal { try await server.fit(numRounds: rounds, timeout: timeout) }
        for t in tasks { _ = try? await t.value }
        await wire.stop()

        switch outcome {
        case .finished(let summary):
            let modelPath = (out as NSString).appendingPathComponent("model.npz")
            let plotPath = (out as NSString).appendingPathComponent("accuracy.svg")
            try writeModel(summary.parameters, to: modelPath)
            try HistoryPlot().write(summary.history, to: plotPath)
            printSummary(summary.history, wall: (ContinuousClock.now - wallStart).seconds)
            if let reason = summary.stopReason { print("stopped early: \(reason)") }
            print("wrote \(historyPath), \(modelPath), \(plotPath)")
        case .failed(let error):
            throw ExitMessage(error: error)
        case .signalled(let name):
            logger.notice("stopped on \(name)")
        }
    }

    private func printSummary(_ history: History, wall: Double) {
        let dp = history.rounds.contains { $0.privacy != nil }
        print("round  accuracy  loss     clients  failures  seconds" + (dp ? "  epsilon" : ""))
        for r in history.rounds {
            print(String(format: "%5d  %8.4f  %7.4f  %7d  %8d  %7.1f", r.round, r.accuracy ?? .nan, r.loss ?? .nan,
                         r.fitClients, r.failures, r.seconds) + (r.privacy.map { String(format: "  %7.3f", $0.epsilon) } ?? ""))
        }
        if let line = history.worstSiteEpsilonSummary { print(line) }
        print(String(format: "wall time %.1f s, peak memory %.0f MB", wall, peakRSSMegabytes()))
    }
}

