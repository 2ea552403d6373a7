import ArgumentParser
import FlowerLearning
import FlowerRuntime
import FlowerWire
import Foundation

/// `flwr server`: the federated server (the entrypoint of the server pod).
struct ServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "server",
        abstract: "Run the federated server: wait for clients, run FedAvg rounds, evaluate, checkpoint.",
        discussion: """
            Clients connect with `flwr client --server HOST:PORT`. After every round the server logs \
            one line, appends to --metrics-out and writes a checkpoint to --checkpoint-dir; with \
            --resume it continues after the last completed round. It exits 0 after the last round \
            (or, with --linger, keeps answering late clients with Finish until SIGTERM).
            """)

    @OptionGroup var round: RoundOptions
    @OptionGroup var federation: FederationOptions
    @OptionGroup var net: ServerNetworkOptions
    @OptionGroup var strategyOptions: StrategyOptions
    @OptionGroup var updates: UpdateCompressionOptions
    @OptionGroup(title: "Asynchronous FedBuff (real clock)") var fedBuff: FedBuffOptions
    @Option(help: "Connected clients to wait for before each round (Flower's min_available_clients).") var minClients: Int = 10
    @Option(help: "Dataset whose test set the server evaluates on after every round: fashion-mnist, mnist, cifar10, npz, csv, or none (federated evaluation on the clients instead).") var dataset: String = "fashion-mnist"
    @Option(help: "Folder holding the dataset files (default: /usr/share/datasets/<dataset>).") var dataDir: String?
    @OptionGroup var fileOptions: DataFileOptions
    @Option(help: "Append one JSON object per round to this file (history.jsonl).") var metricsOut: String?
    @Option(help: "Write the final model here as numpy .npz.") var modelOut: String?
    @Option(help: "Write an SVG plot of accuracy and loss per round here.") var plotOut: String?

    // Training settings sent to every client in FitIns (unset: the clients' own flags).
    @Option(help: "Local epochs per round, sent to clients.") var epochs: Int?
    @Option(help: "Minibatch size, sent to clients.") var batchSize: Int?
    @Option(help: "SGD learning rate, sent to clients.") var lr: Double?
    @Option(help: "SGD momentum, sent to clients.") var momentum: Double?
    @OptionGroup var dpFedAvg: DPFedAvgOptions
    @Flag(help: "After the last round keep running and answer late clients with Finish until SIGTERM (for a Kubernetes Deployment).") var linger = false
    @Option(help: "Threads for central evaluation (default: all cores).") var threads: Int?
    @OptionGroup var modelOptions: ModelOptions
    @Option(help: ArgumentHelp("Start from these weights (.npz, one float array per parameter, e.g. a PyTorch state_dict saved with numpy or an earlier --model-out); names and shapes must match the model.", valueName: "file")) var initialModel: String?
    @OptionGroup var log: LogOptions
    @OptionGroup var ops: OpsOptions
    @OptionGroup var tensorboard: TensorBoardOptions
    @Flag(help: "/readyz answers 503 until --min-clients clients are connected (default: ready once listening).") var readyWhenMinClients = false
    @OptionGroup(title: "Connection limits") var connections: ServerConnectionOptions
    @OptionGroup(title: "Flower clients") var flowerCompat: FlowerServerCompatOptions
    @OptionGroup(title: "Security (TLS 1.3, mutual TLS, auth token)") var security: ServerTLSOptions

    func validate() throws {
        let waitTimeout = round.waitTimeout ?? 600
        guard waitTimeout > 0 else { throw ValidationError("--wait-timeout must be positive seconds, got \(waitTimeout)") }
        try validating { try config(model: .reference).validate() }
    }

    func run() async throws {
        let logger = log.bootstrap(label: "flwr.server")
        try await ServerRuntime(config: try config(), logger: logger).run()
    }

    /// The library's form of these flags (`model`: instead of reading --model/--model-spec).
    func config(model: ModelSelection? = nil) throws -> ServerRuntimeConfig {
        var wire = try validating {
            try WireServerConfig(host: net.host, port: net.port, authToken: net.authToken, maxFrameMb: net.maxFrameMb, maxClients: net.maxClients,
                                 maxConnections: connections.maxConnections, maxHandshakes: connections.maxHandshakes,
                                 maxHandshakesPerAddress: connections.maxHandshakesPerAddress, handshakeTimeout: connections.handshakeTimeout,
                                 maxBufferedPayloads: connections.maxBufferedPayloads)
        }
        wire.updateCompression = updates.updateCompression
        wire.broadcastCompression = updates.broadcastCompression
        wire.compressionAllowed = updates.zlib
        var c = ServerRuntimeConfig(wire: wire, model: try model ?? modelOptions.selection())
        c.security = security.config(flagToken: net.authToken)
        c.federation = try federation.settings(round); c.strategy = try strategyOptions.settings()
        c.dpFedAvg = try dpFedAvg.config(samplingRate: round.fractionFit ?? 1)
        c.minClients = minClients; c.waitTimeout = .milliseconds(Int64((round.waitTimeout ?? 600) * 1000))
        c.dataset = dataset; c.dataDir = dataDir; c.files = fileOptions.files; c.maxTestExamples = round.maxTestExamples
        c.checkpointDir = round.checkpointDir; c.resume = round.resume
        c.metricsOut = metricsOut; c.modelOut = modelOut; c.plotOut = plotOut
        c.fitConfig = fitInstructions(epochs: epochs, batchSize: batchSize, lr: lr, momentum: momentum); c.linger = linger
        c.threads = threads ?? ProcessInfo.processInfo.activeProcessorCount
        c.initialModel = initialModel
        c.ops = ops.config; c.tensorboardDir = tensorboard.tensorboardDir; c.readyWhenMinClients = readyWhenMinClients
        c.flower = try flowerCompat.config()
        if fedBuff.mode == .async { c.fedBuff = fedBuff.config(serverLearningRate: strategyOptions.serverLearningRate) }
        return c
    }
}

/// Network flags of the server.
struct ServerNetworkOptions: ParsableArguments {
    @Option(help: "Address to listen on.") var host: String = "0.0.0.0"
    @Option(help: "TCP port to listen on (0: any free port).") var port: Int = 8080
    @Option(help: "Shared secret clients must prove (HMAC-SHA256 challenge; never sent). Visible in /proc/*/cmdline: prefer --auth-token-file or FLWR_AUTH_TOKEN. Without a token or --tls-client-ca any client that reaches the port is accepted (only loopback, or with --insecure).") var authToken: String?
    @Option(help: "Largest frame accepted, in MB.") var maxFrameMb: Int = 256
    @Option(help: "Most clients connected at once (further ones are refused as 'server full').") var maxClients: Int?
}
