// `flwr client`: one federated client (the entrypoint of a client pod). What it trains on comes
// from FlowerIdentity's contract (flag, FLWR_PARTITION, JOB_COMPLETION_INDEX, hostname ordinal,
// or the whole data folder); it connects to a flwr server over the wire, or joins a Flower server.
import Attacks
import CIFARLoader
import FlowerCompat
import FlowerCore
import FlowerIdentity
import FlowerLearning
import FlowerWire
import Foundation
import Logging

/// Everything a client needs, in plain values.
public struct ClientRuntimeConfig: Sendable {
    public var dataset: DatasetLocation
    public var model: ModelSelection
    public var host = "127.0.0.1"
    public var port = 8080
    /// --partition (nil: from the environment or hostname when a split is asked for).
    public var partition: Int?
    /// True when --num-partitions or --alpha was given (train on a partition, not the whole folder).
    public var asksForSplit = false
    public var numPartitions = 10
    public var scheme: Partitioner = .iid
    /// Seed of the split, the model, shuffling and retry jitter.
    public var seed: UInt64 = 42
    /// The identity announced (nil: partition-N, or the hostname on its own data).
    public var clientID: String?
    /// Local training fallbacks when the server's FitIns config is silent (seed replaced by `seed`).
    public var training = TrainingDefaults()
    public var threads = ProcessInfo.processInfo.activeProcessorCount
    public var privacy = DataPrivacy()
    public var attack: AttackSettings?
    /// Record-level DP-SGD on this site; nil: plain SGD.
    public var dpSGD: DPSGDOptions?
    public var maxTrainExamples: Int?
    /// Answer every fit this many times later than its training took (`SlowedClient`; 1: as fast as this machine).
    public var slowdown = 1.0
    public var maxFrameBytes = 256 << 20
    public var connectDeadline: Duration = .seconds(600)
    public var security = ClientSecurityConfig()
    public var ops = OpsConfig()
    /// Join a Flower server instead (host, port, message size, root certificate; deadline and seed
    /// are filled in at start).
    public var flower: FlowerCompatClientConfig?
    /// The process environment and hostname the identity contract reads.
    public var environment = ProcessInfo.processInfo.environment
    public var hostname = ProcessInfo.processInfo.hostName

    public init(dataset: DatasetLocation, model: ModelSelection) {
        self.dataset = dataset
        self.model = model
    }
}

/// One federated client process.
public struct ClientRuntime {
    public let config: ClientRuntimeConfig
    public let logger: Logger

    public init(config: ClientRuntimeConfig, logger: Logger) {
        self.config = config
        self.logger = logger
    }

    /// Trains when the server asks until it says training is finished; returns the rounds the
    /// server reported, or nil when a signal stopped it.
    @discardableResult
    public func run() async throws -> Int? {
        let c = config
        try c.validate()
        let clientOps = try await ClientOps(ops: c.ops, logger: logger)
        let selection = try resolveDataSelection(partitionFlag: c.partition, asksForSplit: c.asksForSplit,
                                                 numPartitions: c.numPartitions, environment: c.environment,
                                                 hostname: c.hostname)
        // On its own data a client still has an ordinal when the pod gives one (shuffling, retry jitter).
        let index = selection.index ?? (try? resolvePartition(flag: nil, environment: c.environment, hostname: c.hostname)) ?? 0
        let split = try c.dataset.load()
        let local = try ClientDataBuilder(numPartitions: c.numPartitions, scheme: c.scheme, seed: c.seed, privacy: c.privacy,
                                          maxTrainExamples: c.maxTrainExamples, logger: logger)
            .build(split: split, selection: selection, ledgerDirectory: defaultLedgerDirectory(dataDir: c.dataset.dataDir))
        let threads = c.threads
        let input = modelInputShape(split.train), classes = split.train.classes
        let seed = c.seed
        let model = c.model
        let pool = ModelPool(size: 1) { try model.build(input: input, classes: classes, seed: seed, threads: threads) }
        // A spec that does not fit the data fails here, before connecting.
        let fingerprint = try pool.withModelNow { modelFingerprint(label: model.label, layout: $0.layout) }
        var defaults = c.training
        defaults.seed = seed
        let train = LocalData(dataset: AttackPlan.trainingData(local.train.dataset, settings: c.attack))
        let instrumented = clientOps.instrument(
            AttackPlan.wrap(ModelClient(partition: index, train: train, eval: local.eval, pool: pool, defaults: defaults,
                                        logger: logger, dpSGD: try dpSGDSite(index: index)),
                            settings: c.attack, partition: index),
            defaultEpochs: c.training.epochs, epsilon: c.privacy.epsilon)
        let client: any Client = c.slowdown > 1 ? SlowedClient(instrumented, factor: c.slowdown) : instrumented
        if c.slowdown > 1 {
            logger.info("--slowdown \(c.slowdown): every fit answers \(c.slowdown)× its training time after the instruction (a slower site)")
        }
        var wire = WireClientConfig(host: c.host, port: c.port,
                                    clientID: c.clientID ?? defaultClientID(selection, hostname: c.hostname),
                                    partition: selection.index, authToken: c.security.authToken)
        wire.maxFrameBytes = c.maxFrameBytes
        wire.model = fingerprint
        wire.retry.deadline = c.connectDeadline
        wire.retry.seed = seed &+ UInt64(index)
        wire.updateSeed = seed &+ UInt64(index)
        clientOps.observe(&wire)
        try c.security.apply(to: &wire, logger: logger)
        let wireConfig = wire
        let what = selection.index.map { "partition \($0) of \(c.numPartitions)" } ?? "all of \(split.train.name)"
        logger.info("\(what): \(local.train.count) training examples; connecting to \(c.host):\(c.port)")
        var flowerConfig = c.flower
        if flowerConfig != nil {
            flowerConfig?.connectDeadline = c.connectDeadline
            flowerConfig?.seed = seed &+ UInt64(index)
        }
        let flower = flowerConfig
        if let flower { logger.info("joining the Flower server at \(flower.host):\(flower.port)") }
        let log = logger
        let outcome = await runUntilSignal {
            if let flower { return try await FlowerCompatClient.run(config: flower, client: client, logger: log) }
            return try await WireClient.run(config: wireConfig, client: client, logger: log)
        }
        switch outcome {
        case .finished(let rounds):
            logger.info("server finished training after \(rounds) rounds; exiting")
            return rounds
        case .failed(let error):
            throw ExitMessage(error: error)
        case .signalled(let name):
            logger.notice("stopping on \(name)")
            return nil
        }
    }
}

extension ClientRuntime {
    /// The site's DP-SGD state when DP-SGD is on: its ledger sits beside the data-level one
    /// (`--ledger-dir`, else beside the data), one folder per partition.
    func dpSGDSite(index: Int) throws -> DPSGDSite? {
        guard let options = config.dpSGD else { return nil }
        let base = config.privacy.ledgerDirectory ?? defaultLedgerDirectory(dataDir: config.dataset.dataDir)
        return try DPSGDSite(options: options,
                             ledgerDirectory: (base as NSString).appendingPathComponent("dp-sgd-partition-\(index)"))
    }
}
