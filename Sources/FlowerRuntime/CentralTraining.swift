// `flwr train`: centralised training (no federation) with test accuracy after each epoch.
import CIFARLoader
import CNNModel
import FlowerCore
import FlowerLearning
import FlowerOps
import Foundation
import Logging

/// Everything centralised training needs, in plain values.
public struct CentralTrainingConfig: Sendable {
    public var dataset: DatasetLocation
    public var model: ModelSelection
    public var epochs = 1
    public var batchSize = 32
    public var sgd = SGDConfig(learningRate: 0.01, momentum: 0.9, weightDecay: 0)
    public var threads = ProcessInfo.processInfo.activeProcessorCount
    public var seed: UInt64 = 42
    /// Use at most this many training images (the first ones).
    public var maxTrainExamples: Int?
    /// Laplace noise on the training images first (the test set stays clean).
    public var privacy = DataPrivacy()
    /// Record-level DP-SGD (per-example clipping, Gaussian noise, Poisson sampling); nil: plain SGD.
    public var dpSGD: DPSGDOptions?
    /// One JSON object per epoch (epoch, loss, accuracy, test_loss, seconds, images_per_s).
    public var metricsOut: String?
    public var modelOut: String?
    public var tensorboardDir: String?
    /// Draw a progress bar on stderr.
    public var progressBar = false

    public init(dataset: DatasetLocation, model: ModelSelection) {
        self.dataset = dataset
        self.model = model
    }
}

/// One epoch's figures.
public struct EpochResult: Sendable, Equatable {
    public let epoch: Int
    public let loss: Double
    public let testLoss: Double
    public let testAccuracy: Double
    public let seconds: Double
}

/// Trains one model on the whole training set, evaluating on the test set after every epoch.
public struct CentralTraining {
    public let config: CentralTrainingConfig
    public let logger: Logger

    public init(config: CentralTrainingConfig, logger: Logger) {
        self.config = config
        self.logger = logger
    }

    /// Loads the data and trains; returns each epoch's figures.
    @discardableResult
    public func run() throws -> [EpochResult] {
        try run(on: config.dataset.load())
    }

    /// Trains on `split`; returns each epoch's figures.
    @discardableResult
    public func run(on split: DatasetSplit) throws -> [EpochResult] {
        let c = config
        var train = split.train
        if let m = c.maxTrainExamples, m < train.count { train = train.subset(Array(0 ..< m)) }
        if let request = try c.privacy.request(defaultLedgerDirectory: defaultLedgerDirectory(dataDir: c.dataset.dataDir)) {
            let released = try privatize(train, request: request)
            train = released.dataset
            logger.info("privacy: \(train.name); ledger \(released.ledgerPath) spent \(released.spent) of \(request.budget)")
        }
        guard train.count > 0 else { throw RuntimeError.emptyData("the training set of \(c.dataset.kind.rawValue) is empty") }
        let trainImages = modelInput(train)
        let testImages = modelInput(split.test)
        let model = try c.model.build(input: modelInputShape(train), classes: train.classes, seed: c.seed, threads: c.threads)
        logger.info("\(train.name): \(train.count) training and \(split.test.count) test images; \(c.model.label) with \(model.parameterCount) parameters, \(c.threads) threads")

        let dp = try c.dpSGD.map { try CentralDPSGD(options: $0, datasetSize: train.count, batchSize: c.batchSize, epochs: c.epochs) }
        if let dp { let line = try dp.summary(); logger.info("\(line)") }
        let metrics = try c.metricsOut.map { try JSONLinesFile(path: $0) }
        let board = try tensorBoardWriter(directory: c.tensorboardDir, logger: logger)
        let bar = ProgressBar(enabled: c.progressBar)
        var results: [EpochResult] = []
        for epoch in 1 ... c.epochs {
            let start = ContinuousClock.now
            var dpEpoch: DPSGDEpochReport?
            if let dp {  // record-level DP-SGD: ends early once the target ε allows no further step
                dpEpoch = try trainImages.withUnsafeBufferPointer { ib in
                    try train.labels.withUnsafeBufferPointer { lb in try dp.epoch(model, images: ib, labels: lb, sgd: c.sgd) }
                }
                if dpEpoch == nil { logger.info("DP-SGD: the target epsilon allows no further step; stopping"); break }
            }
            let result: (meanLoss: Double, examples: Int)
            if let e = dpEpoch { result = (e.loss, e.examples) } else {
                let r = try trainImages.withUnsafeBufferPointer { ib in
                    try train.labels.withUnsafeBufferPointer { lb in
                        try model.train(images: ib, labels: lb, epochs: 1, batchSize: c.batchSize,
                                        sgd: c.sgd, seed: c.seed &+ UInt64(epoch)) { p in
                            bar.update(epoch: epoch, of: c.epochs, step: p.step, of: p.stepsPerEpoch,
                                       images: p.examplesSeen, seconds: (ContinuousClock.now - start).seconds, loss: p.loss)
                        }
                    }
                }
                result = (r.meanLoss, r.examples)
            }
            let seconds = (ContinuousClock.now - start).seconds
            bar.finish()
            let eval = try testImages.withUnsafeBufferPointer { ib in
                try split.test.labels.withUnsafeBufferPointer { lb in try model.evaluate(images: ib, labels: lb) }
            }
            let rate = Double(result.examples) / max(seconds, 1e-9)
            let line = String(format: "epoch %d/%d  loss %.4f  test loss %.4f  test accuracy %.4f  %.1f s  %.0f images/s",
                              epoch, c.epochs, result.meanLoss, eval.loss, eval.accuracy, seconds, rate)
            let delta = c.dpSGD?.delta ?? 0
            logger.info("\(line)\(dpEpoch.map { String(format: "  epsilon %.4g (delta %g)", $0.epsilon, delta) } ?? "")")
            var fields: [String: Scalar] = ["epoch": .int(Int64(epoch)), "loss": .double(result.meanLoss),
                                            "accuracy": .double(eval.accuracy), "test_loss": .double(eval.loss),
                                            "seconds": .double(seconds), "images_per_s": .double(rate)]
            if let e = dpEpoch { fields["epsilon"] = .double(e.epsilon); fields["delta"] = .double(delta) }
            try metrics?.append(fields)
            try board?.add(step: epoch, scalars: [("accuracy", eval.accuracy), ("loss", result.meanLoss),
                                                  ("test_loss", eval.loss), ("round_seconds", seconds)]
                           + ((dpEpoch?.epsilon ?? c.privacy.epsilon).map { [("epsilon", $0)] } ?? []))
            results.append(EpochResult(epoch: epoch, loss: result.meanLoss, testLoss: eval.loss,
                                       testAccuracy: eval.accuracy, seconds: seconds))
        }
        if let path = c.modelOut {
            try writeModel(try Parameters(shapes: model.layout, values: model.parameters()), to: path)
            logger.info("model written to \(path)")
        }
        return results
    }
}

/// A one-line progress bar on a terminal; silent otherwise (the caller logs per epoch).
public final class ProgressBar {
    public let enabled: Bool
    private var lastDraw = ContinuousClock.now - .seconds(1)
    private var drawn = false

    public init(enabled: Bool) { self.enabled = enabled }

    public func update(epoch: Int, of epochs: Int, step: Int, of steps: Int, images: Int, seconds: Double, loss: Double) {
        guard enabled else { return }
        let now = ContinuousClock.now
        guard step == steps || now - lastDraw > .milliseconds(100) else { return }
        lastDraw = now
        let width = 30
        let filled = steps > 0 ? min(width, step * width / steps) : 0
        let bar = String(repeating: "=", count: filled) + (filled < width ? ">" : "") + String(repeating: " ", count: max(0, width - filled - 1))
        let rate = String(format: "%3d%%  %6.0f img/s  loss %.4f", steps > 0 ? step * 100 / steps : 0,
                          Double(images) / max(seconds, 1e-9), loss)
        let line = "\repoch \(epoch)/\(epochs) [\(bar)] \(rate)"
        FileHandle.standardError.write(Data(line.utf8))
        drawn = true
    }

    public func finish() {
        guard enabled, drawn else { return }
        FileHandle.standardError.write(Data("\n".utf8))
        drawn = false
    }
}
