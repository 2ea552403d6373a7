import ArgumentParser
import FlowerRuntime
import Foundation

/// `flwr train`: centralised training of the reference CNN on one machine.
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a model (default: the reference CNN) centrally (no federation), with test accuracy after each epoch.",
        discussion: """
            A progress bar (images/s, loss) is drawn when stderr is a terminal, plain lines otherwise. \
            With --dp-epsilon the training images get Laplace noise first (see `flwr privatize --help` \
            for what each --dp-unit guarantees); the test set stays clean.
            """)

    @OptionGroup var source: DatasetSource
    @OptionGroup var training: TrainingOptions
    @OptionGroup var privacy: PrivacyOptions
    @OptionGroup(title: "Record-level DP-SGD") var dpSGD: DPSGDFlags
    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var logOptions: LogOptions
    @OptionGroup var tensorboard: TensorBoardOptions
    @Option(help: "Seed of initialisation and shuffling.") var seed: UInt64 = 42
    @Option(help: "Use at most this many training images (the first ones), e.g. for a quick check.") var maxTrainExamples: Int?
    @Option(help: "Write one JSON object per epoch (epoch, loss, accuracy, seconds, images_per_s) to this file.") var metricsOut: String?
    @Option(help: "Save the trained model as a numpy .npz (one array per parameter).") var modelOut: String?

    func validate() throws { if let m = maxTrainExamples, m < 1 { throw ValidationError("--max-train-examples must be at least 1, got \(m)") } }

    func run() throws {
        let logger = logOptions.bootstrap(label: "flwr.train")
        try CentralTraining(config: try config(), logger: logger).run()
    }

    /// The library's form of these flags.
    func config() throws -> CentralTrainingConfig {
        var c = CentralTrainingConfig(dataset: try source.location(), model: try modelOptions.selection())
        c.epochs = training.epochs; c.batchSize = training.batchSize; c.sgd = try training.sgd(); c.threads = training.threadCount
        c.seed = seed; c.maxTrainExamples = maxTrainExamples; c.privacy = try privacy.settings()
        c.metricsOut = metricsOut; c.modelOut = modelOut; c.tensorboardDir = tensorboard.tensorboardDir
        c.progressBar = isatty(STDERR_FILENO) == 1
        c.dpSGD = try dpSGD.options()
        return c
    }
}
