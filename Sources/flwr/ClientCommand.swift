import ArgumentParser
import CIFARLoader
import CNNModel
import FlowerLearning
import FlowerCore
import FlowerWire
import Foundation
import Logging

/// `flwr client`: one federated client (the entrypoint of a client pod).
struct ClientCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "client",
        abstract: "Run one federated client: train the CNN on its own data (or partition N of a dataset) when the server asks.",
        discussion: """
            With none of --partition, --num-partitions, --alpha the client trains on its own data: \
            everything in --data-dir (e.g. --dataset npz --data-dir /data on an edge site), and \
            evaluates on the folder's test set if it has one; it announces its hostname as identity. \
            With any of them it trains on one partition of a shared dataset: the partition comes \
            from --partition, else FLWR_PARTITION, else JOB_COMPLETION_INDEX (a \
            Kubernetes Indexed Job), else the ordinal at the end of the hostname (flwr-client-3 → 3). \
            Every client computes the same split from --num-partitions, --alpha and --seed, so pods \
            need no coordination. The client retries the connection with exponential backoff and \
            jitter until the server is up, and exits 0 when the server says training is finished.
            """)

    @Option(help: "Server address HOST:PORT.")
    var server: String = "127.0.0.1:8080"

    @Option(help: "This client's partition, 0-based (default: see below).")
    var partition: Int?

    @Option(help: "Identity announced to the server (default: partition-N, or the hostname when training on the whole --data-dir).")
    var clientId: String?

    @OptionGroup var data: DataOptions
    @OptionGroup var training: TrainingOptions
    @OptionGroup var privacy: PrivacyOptions
    @OptionGroup var attack: AttackOptions

    @Option(help: "Train on at most this many examples of the partition (the first ones), e.g. for a quick check.")
    var maxTrainExamples: Int?

    @Option(help: "Shared secret the server requires (proved with HMAC-SHA256; never sent).")
    var authToken: String?

    @Option(help: "Largest frame accepted, in MB.")
    var maxFrameMb: Int = 256

    @Option(help: "Seconds to keep retrying to reach the server before giving up.")
    var connectDeadline: Double = 600

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var log: LogOptions
    @OptionGroup var ops: OpsOptions
    @OptionGroup(title: "Joining a Flower server") var flowerCompat: FlowerClientCompatOptions
    @OptionGroup(title: "Security (TLS 1.3, mutual TLS, auth token)") var security: ClientTLSOptions
    @OptionGroup(title: "Record-level DP-SGD on this site") var dpSGD: DPSGDFlags

    func validate() throws {
        _ = try parseHostPort(server)
        if let m = maxTrainExamples, m < 1 { throw ValidationError("--max-train-examples must be at least 1, got \(m)") }
        guard maxFrameMb >= 1 && maxFrameMb <= 4095 else { throw ValidationError("--max-frame-mb must be in 1...4095, got \(maxFrameMb)") }
        guard connectDeadline > 0 else { throw ValidationError("--connect-deadline must be positive seconds, got \(connectDeadline)") }
        try dpSGD.validateForSites()
    }

    func run() async throws {
        let logger = log.bootstrap(label: "flwr.client")
        let clientOps = try await ClientOps(ops: ops, logger: logger)
        let env = ProcessInfo.processInfo.environment
        let hostname = ProcessInfo.processInfo.hostName
        let selection = try resolveDataSelection(partitionFlag: partition, asksForSplit: data.asksForSplit,
                                                 numPartitions: data.numPartitions, environment: env, hostname: hostname)
        // On its own data a client still has an ordinal when the pod gives one (shuffling, retry jitter).
        let index = selection.index ?? (try? resolvePartition(flag: nil, environment: env, hostname: hostname)) ?? 0
        let split = try data.source.load()
        let local = try ClientDataBuilder(numPartitions: data.numPartitions, scheme: data.scheme, seed: data.seed, privacy: privacy, maxTrainExamples: maxTrainExamples, logger: logger)
            .build(split: split, selection: selection, ledgerDirectory: defaultLedgerDirectory(dataDir: data.dataDir))
        let threads = training.threadCount
        let input = modelInputShape(split.train), classes = split.train.classes
        let seed = data.seed
        let model = try modelOptions.selection()
        let pool = ModelPool(size: 1) { try model.build(input: input, classes: classes, seed: seed, threads: threads) }
        // A spec that does not fit the data fails here, before connecting.
        let fingerprint = try pool.withModelNow { modelFingerprint(label: model.label, layout: $0.layout) }
        let client = clientOps.instrument(
            attack.wrap(ModelClient(partition: index, train: LocalData(dataset: attack.trainingData(local.train.dataset)),
                                    eval: local.eval, pool: pool, defaults: training.defaults(seed: seed), logger: logger,
                                    dpSGD: try dpSGD.options.map { try DPSGDSite(options: $0, ledgerDirectory: ((privacy.ledgerDir ?? defaultLedgerDirectory(dataDir: data.dataDir)) as NSString).appendingPathComponent("dp-sgd-partition-\(index)")) }),
                        partition: index, seed: seed),
            defaultEpochs: training.epochs, epsilon: privacy.dpEpsilon)
        let (host, port) = try parseHostPort(server)
        var config = WireClientConfig(host: host, port: port, clientID: clientId ?? defaultClientID(selection, hostname: hostname),
                                      partition: selection.index, authToken: authToken)
        config.maxFrameBytes = maxFrameMb << 20
        config.model = fingerprint
        config.retry.deadline = .milliseconds(Int64(connectDeadline * 1000))
        config.retry.seed = seed &+ UInt64(index)
        clientOps.observe(&config)
        try security.apply(to: &config, flagToken: authToken, logger: logger)
        let wireConfig = config
        let what = selection.index.map { "partition \($0) of \(data.numPartitions)" } ?? "all of \(split.train.name)"
        logger.info("\(what): \(local.train.count) training examples; connecting to \(host):\(port)")
        let flowerRun = try flowerCompat.run(client: client, connectDeadline: connectDeadline, seed: seed &+ UInt64(index), logger: logger)
        let outcome = await runUntilSignal {
            if let flowerRun { return try await flowerRun() }
            return try await WireClient.run(config: wireConfig, client: client, logger: logger)
        }
        switch outcome {
        case .finished(let rounds):
            logger.info("server finished training after \(rounds) rounds; exiting")
        case .failed(let error):
            throw ExitMessage(error: error)
        case .signalled(let name):
            logger.notice("stopping on \(name)")
        }
    }
}

/// Splits HOST:PORT (IPv6 as [addr]:port).
func parseHostPort(_ s: String) throws -> (String, Int) {
    var host = s
    var portText = ""
    if s.hasPrefix("["), let close = s.firstIndex(of: "]") {
        host = String(s[s.index(after: s.startIndex) ..< close])
        let rest = s[s.index(after: close)...]
        guard rest.hasPrefix(":") else { throw ValidationError("--server \(s): expected [IPv6]:PORT") }
        portText = String(rest.dropFirst())
    } else if let colon = s.lastIndex(of: ":") {
        host = String(s[..<colon])
        portText = String(s[s.index(after: colon)...])
    } else {
        portText = "8080"
    }
    guard !host.isEmpty, let port = Int(portText), (1 ... 65535).contains(port) else {
        throw ValidationError("--server must be HOST:PORT with a port in 1...65535, got \(s)")
    }
    return (host, port)
}

/// Builds a client's local training and evaluation data from the shared dataset.
struct ClientDataBuilder {
    let numPartitions: Int
    let scheme: Partitioner
    let seed: UInt64
    let privacy: PrivacyOptions
    let maxTrainExamples: Int?
    let logger: Logger

    /// The training set's split into `numPartitions` partitions (compute it once for many clients).
    func partitions(of split: DatasetSplit) throws -> [[Int]] {
        try CIFARLoader.partition(labels: split.train.labels, numPartitions: numPartitions, scheme: scheme, seed: seed)
    }

    /// The client's share: partition `index` of the training set (noised when DP is on) and
    /// every `numPartitions`-th test image as its evaluation set. `parts`: the split from
    /// `partitions(of:)`, computed here when not given.
    func build(split: DatasetSplit, parts: [[Int]]? = nil, partition index: Int,
               ledgerDirectory: String) throws -> (train: LocalData, eval: LocalData?) {
        var indices = try (parts ?? partitions(of: split))[index]
        if let m = maxTrainExamples, m < indices.count { indices = Array(indices.prefix(m)) }
        var train = split.train.subset(indices)
        if let request = try privacy.request(defaultLedgerDirectory: ledgerDirectory) {
            let released = try privatize(train, request: request)
            train = released.dataset
            logger.info("partition \(index): \(train.name); ledger \(released.ledgerPath): spent \(released.spent) of \(request.budget)")
        }
        let testIndices = Array(stride(from: index, to: split.test.count, by: numPartitions))
        let eval = testIndices.isEmpty ? nil : LocalData(dataset: split.test.subset(testIndices))
        return (LocalData(dataset: train), eval)
    }
}
