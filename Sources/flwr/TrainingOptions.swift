import ArgumentParser
import CNNModel
import FlowerLearning
import Foundation

/// Local training flags shared by `flwr train`, `flwr client` and `flwr simulate`.
struct TrainingOptions: ParsableArguments {
    @Option(help: "Local epochs per fit (in `flwr train`: epochs in total).") var epochs: Int = 1
    @Option(help: "Minibatch size.") var batchSize: Int = 32
    @Option(help: "SGD learning rate.") var lr: Double = 0.01
    @Option(help: "SGD momentum.") var momentum: Double = 0.9
    @Option(help: "L2 weight decay added to the gradient.") var weightDecay: Double = 0
    @Option(help: "Threads for the training kernels (default: all cores).") var threads: Int?

    func validate() throws {
        _ = try defaults(seed: 0)
        if let t = threads, t < 1 { throw ValidationError("--threads must be at least 1, got \(t)") }
    }

    /// The optimiser settings.
    func sgd() throws -> SGDConfig {
        let d = try defaults(seed: 0)
        return SGDConfig(learningRate: d.learningRate, momentum: d.momentum, weightDecay: d.weightDecay)
    }

    /// Threads to use: the flag, else every core.
    var threadCount: Int { threads ?? ProcessInfo.processInfo.activeProcessorCount }

    /// The fallbacks a client uses when the server's FitIns config is silent.
    func defaults(seed: UInt64) throws -> TrainingDefaults {
        try validating { try TrainingDefaults(epochs: epochs, batchSize: batchSize, lr: lr, momentum: momentum, weightDecay: weightDecay, seed: seed) }
    }
}
