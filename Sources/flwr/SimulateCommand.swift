import ArgumentParser
import FlowerLearning
import FlowerRuntime

/// `flwr simulate`: a server and N clients on this machine, over loopback TCP or in process.
struct SimulateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Run a whole federation on this machine: the server and N clients, over loopback TCP or as virtual clients.",
        discussion: """
            The same round loop as a deployment (the server, its strategies, DP-FedAvg, central \
            evaluation on the test set after every round, history), in one process: the dataset is \
            loaded once and at most --parallel clients train at a time so the cores are not \
            oversubscribed. With --transport tcp every client is a FlowerWire client on its own \
            loopback connection; with --transport virtual an idle client is only a description \
            (its identity and its slice of the shared dataset, under 100 bytes measured), built into a \
            client when the server samples it, so 100,000 clients fit in one process. \
            Writes DIR/history.jsonl, DIR/model.npz and DIR/accuracy.svg. SIGTERM or SIGINT \
            (Ctrl-C) stops the run within the round in progress, logs "stopped on SIGTERM", and \
            exits with status 143 (SIGTERM) or 130 (SIGINT), 128 + the signal's number as a shell reports it. \
            With --checkpoint-dir a checkpoint is written after every completed round; the same \
            command with --resume continues after it.
            """)

    @Option(help: "Number of clients (partitions).") var clients: Int = 10
    @OptionGroup var round: RoundOptions
    @OptionGroup var source: DatasetSource
    @Option(help: "Dirichlet α of the non-IID split (0.1 very skewed, 1000 nearly IID; the same split as Flower Datasets' DirichletPartitioner for the same --seed); 0 for an IID split.") var alpha: Double = 0.5
    @Option(help: ArgumentHelp("Sizes of the IID split (--alpha 0): equal (they differ by at most one) or lognormal:σ (drawn lognormal from --seed with log-scale σ, e.g. lognormal:1, the unequal amounts of data real devices hold; every client keeps at least one example, so at most as many clients as training examples). With --alpha > 0 the Dirichlet draw sets both labels and sizes, and this flag is refused.", valueName: "equal|lognormal:σ")) var partitionSizes: String = "equal"
    @OptionGroup var training: TrainingOptions
    @Option(help: "Clients sampled for training each round, uniformly without replacement (instead of --fraction-fit). With DP-FedAvg (--dp-noise-multiplier) each client is instead sampled independently with probability q = M/--clients (Poisson sampling, what the privacy accountant assumes), so a round has M clients on average.") var clientsPerRound: Int?
    @Option(help: ArgumentHelp("How each round's training clients are drawn: uniform (exactly --clients-per-round, or ⌊--fraction-fit·N⌋, distinct clients without replacement) or poisson (each client independently with probability q = M/--clients or --fraction-fit: M on average, varying round to round; a round that draws nobody stops the run, so keep q·N above ~5). With DP-FedAvg (--dp-noise-multiplier) sampling is always poisson, the sampling its accountant's ε assumes, and uniform is refused.", valueName: "uniform|poisson")) var sampling: SamplingKind?
    @Option(help: ArgumentHelp("How clients are reached: tcp (each client a FlowerWire client on its own loopback connection: the deployment's code path, two sockets and a task per client) or virtual (in-process clients built when sampled: no socket, task, model or data copy while idle). Default: tcp up to 100 clients, where it tests the deployment path at little cost, virtual above, where sockets and tasks only add memory and approach the open-file limit.", valueName: "tcp|virtual")) var transport: SimulationTransport?
    @Option(help: "Clients training at the same time (default: one per core; each gets cores/parallel threads).") var parallel: Int?
    @Option(help: "Train each client on at most this many examples of its partition.") var maxTrainExamples: Int?
    @OptionGroup var privacy: PrivacyOptions
    @OptionGroup var strategyOptions: StrategyOptions
    @OptionGroup var updates: UpdateCompressionOptions
    @Option(help: "Number M of malicious clients: partitions 0..<M run --attack (recorded per round in history.jsonl as \"malicious\").") var malicious: Int = 0
    @OptionGroup var attack: AttackOptions
    @OptionGroup var dpFedAvg: DPFedAvgOptions
    @Option(help: "Output folder for history.jsonl, model.npz and accuracy.svg.") var out: String = "flwr-out"
    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var log: LogOptions
    @OptionGroup var tensorboard: TensorBoardOptions
    @OptionGroup(title: "Record-level DP-SGD on every site") var dpSGD: DPSGDFlags
    @OptionGroup(title: "Heterogeneous clients on a virtual clock, and asynchronous FedBuff") var heterogeneity: HeterogeneityOptions

    func validate() throws {
        if clientsPerRound != nil && round.fractionFit != nil { throw ValidationError("give --clients-per-round or --fraction-fit, not both") }
        let waitTimeout = round.waitTimeout ?? 60
        guard waitTimeout > 0 && waitTimeout.isFinite else { throw ValidationError("--wait-timeout must be a positive number of seconds, got \(waitTimeout)") }
        try validating { try config(model: .reference).validate() }
    }

    func run() async throws {
        let logger = log.bootstrap(label: "flwr.simulate")
        switch try await Simulation(config: try config(), logger: logger).runToEnd() {
        case .finished(let result): print(result.report)
        case .signalled(let name): throw ExitCode(SimulationEnd.exitStatus(signal: name))
        }
    }

    /// The library's form of these flags (`model`: instead of reading --model/--model-spec).
    func config(model: ModelSelection? = nil) throws -> SimulationConfig {
        var c = SimulationConfig(dataset: try source.location(), model: try model ?? modelOptions.selection())
        let seed = round.seed
        c.clients = clients; c.rounds = round.rounds ?? 5; c.alpha = alpha; c.seed = seed
        c.partitionSizes = try validating { try validatePartitionSizes(partitionSizes, alpha: alpha) }
        c.training = try training.defaults(seed: seed); c.threads = training.threads
        c.fractionFit = round.fractionFit ?? 1; c.clientsPerRound = clientsPerRound; c.transport = transport
        c.sampling = sampling ?? (dpFedAvg.dpNoiseMultiplier != nil ? .poisson : .uniform)
        c.roundTimeout = .milliseconds(Int64(round.roundTimeout * 1000))
        c.waitTimeout = .microseconds(Int64((round.waitTimeout ?? 60) * 1_000_000))
        c.parallel = parallel; c.maxTrainExamples = maxTrainExamples; c.maxTestExamples = round.maxTestExamples
        c.privacy = try privacy.settings(); c.strategy = try strategyOptions.settings()
        c.malicious = malicious; c.attack = try attack.settings(seed: seed)
        // DP-FedAvg samples each client with probability q (Poisson): M/N under --clients-per-round.
        c.dpFedAvg = try dpFedAvg.config(samplingRate: clientsPerRound.map { Double($0) / Double(clients) } ?? round.fractionFit ?? 1)
        c.dpSGD = try dpSGD.options()
        c.out = out; c.tensorboardDir = tensorboard.tensorboardDir
        c.updateCompression = updates.updateCompression
        c.broadcastCompression = updates.broadcastCompression
        c.zlib = updates.zlib
        c.progressBar = ProgressDisplay.standardErrorIsTerminal
        let h = heterogeneity
        c.clientSpeed = h.clientSpeed; c.linkMbps = h.linkMbps; c.clientAvailability = h.clientAvailability
        c.secondsPerExample = h.secondsPerExample; c.mode = h.fedBuff.mode
        c.fedBuff = h.fedBuff.config(serverLearningRate: strategyOptions.serverLearningRate)
        c.checkpointDir = round.checkpointDir; c.resume = round.resume
        return c
    }
}

extension SamplingKind: ExpressibleByArgument {
    public init?(argument: String) { self.init(rawValue: argument) }
}

extension SimulationTransport: ExpressibleByArgument {
    public init?(argument: String) { self.init(rawValue: argument) }
}
