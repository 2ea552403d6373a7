import ArgumentParser
import CNNModel
import FlowerLearning
import Foundation

/// Local training flags shared by `flwr train`, `flwr client` and `flwr simulate`.
struct TrainingOptions: ParsableArguments {
    @Option(help: "Local epochs per fit (in `flwr train`: epochs in total).")
    var epochs: Int = 1

    @Option(help: "Minibatch size.")
    var batchSize: Int = 32

    @Option(help: "SGD learning rate.")
    var lr: Double = 0.01

    @Option(help: "SGD momentum.")
    var momentum: Double = 0.9

    @Option(help: "L2 weight decay added to the gradient.")
    var weightDecay: Double = 0

    @Option(help: "Threads for the training kernels (default: all cores).")
    var threads: Int?

    func validate() throws {
        guard epochs >= 1 else { throw ValidationError("--epochs must be at least 1, got \(epochs)") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1, got \(batchSize)") }
        guard lr > 0 && lr.isFinite else { throw ValidationError("--lr must be a positive number, got \(lr)") }
        guard momentum >= 0 && momentum < 1 else { throw ValidationError("--momentum must be in [0, 1), got \(momentum)") }
        guard weightDecay >= 0 else { throw ValidationError("--weight-decay must be 0 or more, got \(weightDecay)") }
        if let t = threads, t < 1 { throw ValidationError("--threads must be at least 1, got \(t)") }
    }

    /// The optimiser settings.
    var sgd: SGDConfig {
        SGDConfig(learningRate: Float(lr), momentum: Float(momentum), weightDecay: Float(weightDecay))
    }

    /// Threads to use: the flag, else every core.
    var threadCount: Int { threads ?? ProcessInfo.processInfo.activeProcessorCount }

    /// The fallbacks a client uses when the server's FitIns config is silent.
    func defaults(seed: UInt64) -> TrainingDefaults {
        TrainingDefaults(epochs: epochs, batchSize: batchSize, learningRate: Float(lr), momentum: Float(momentum),
                         weightDecay: Float(weightDecay), seed: seed)
    }
}
