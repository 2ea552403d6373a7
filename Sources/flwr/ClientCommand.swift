import ArgumentParser
import FlowerLearning
import FlowerRuntime

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

    @Option(help: "Server address HOST:PORT.") var server: String = "127.0.0.1:8080"
    @Option(help: "This client's partition, 0-based (default: see below).") var partition: Int?
    @Option(help: "Identity announced to the server (default: partition-N, or the hostname when training on the whole --data-dir).") var clientId: String?
    @OptionGroup var data: DataOptions
    @OptionGroup var training: TrainingOptions
    @OptionGroup var privacy: PrivacyOptions
    @OptionGroup var attack: AttackOptions
    @Option(help: "Train on at most this many examples of the partition (the first ones), e.g. for a quick check.") var maxTrainExamples: Int?
    @Option(help: "Shared secret the server requires (proved with HMAC-SHA256; never sent).") var authToken: String?
    @Option(help: "Largest frame accepted, in MB.") var maxFrameMb: Int = 256
    @Option(help: "Seconds to keep retrying to reach the server before giving up.") var connectDeadline: Double = 600
    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var log: LogOptions
    @OptionGroup var ops: OpsOptions
    @OptionGroup(title: "Joining a Flower server") var flowerCompat: FlowerClientCompatOptions
    @OptionGroup(title: "Security (TLS 1.3, mutual TLS, auth token)") var security: ClientTLSOptions
    @OptionGroup(title: "Record-level DP-SGD on this site") var dpSGD: DPSGDFlags
    @OptionGroup(title: "Emulating a slow site") var site: SiteSpeedOptions

    func validate() throws {
        guard maxFrameMb >= 1 && maxFrameMb <= 4095 else { throw ValidationError("--max-frame-mb must be in 1...4095, got \(maxFrameMb)") }
        guard connectDeadline > 0 else { throw ValidationError("--connect-deadline must be positive seconds, got \(connectDeadline)") }
        try validating { try config(model: .reference).validate() }
    }

    func run() async throws {
        let logger = log.bootstrap(label: "flwr.client")
        try await ClientRuntime(config: try config(), logger: logger).run()
    }

    /// The library's form of these flags (`model`: instead of reading --model/--model-spec).
    func config(model: ModelSelection? = nil) throws -> ClientRuntimeConfig {
        var c = ClientRuntimeConfig(dataset: try data.source.location(), model: try model ?? modelOptions.selection())
        (c.host, c.port) = try validating { try parseHostPort(server) }
        c.partition = partition; c.asksForSplit = data.asksForSplit; c.numPartitions = data.numPartitions
        c.scheme = try data.scheme(); c.seed = data.seed; c.clientID = clientId
        c.training = try training.defaults(seed: data.seed); c.threads = training.threadCount
        c.privacy = try privacy.settings(); c.attack = try attack.settings(seed: data.seed)
        c.maxTrainExamples = maxTrainExamples; c.maxFrameBytes = maxFrameMb << 20
        c.connectDeadline = .milliseconds(Int64(connectDeadline * 1000))
        c.security = security.config(flagToken: authToken); c.ops = ops.config
        c.flower = try flowerCompat.config()
        c.dpSGD = try dpSGD.options()
        c.slowdown = site.slowdown
        return c
    }
}
