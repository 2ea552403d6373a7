import ArgumentParser
import CIFARLoader
import CNNModel
import FlowerLearning
import FlowerCore
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
    @OptionGroup var dpSGD: DPSGDFlags
    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var logOptions: LogOptions
    @OptionGroup var tensorboard: TensorBoardOptions

    @Option(help: "Seed of initialisation and shuffling.")
    var seed: UInt64 = 42

    @Option(help: "Use at most this many training images (the first ones), e.g. for a quick check.")
    var maxTrainExamples: Int?

    @Option(help: "Write one JSON object per epoch (epoch, loss, accuracy, seconds, images_per_s) to this file.")
    var metricsOut: String?

    @Option(help: "Save the trained model as a numpy .npz (one array per parameter).")
    var modelOut: String?

    func validate() throws {
        if let m = maxTrainExamples, m < 1 { throw ValidationError("--max-train-examples must be at least 1, got \(m)") }
    }

    func run() throws {
        let logger = logOptions.bootstrap(label: "flwr.train")
        let split = try source.load()
        var train = split.train
        if let m = maxTrainExamples, m < train.count { train = train.subset(Array(0 ..< m)) }
        if let request = try privacy.request(defaultLedgerDirectory: defaultLedgerDirectory(dataDir: source.dataDir)) {
            let released = try privatize(train, request: request)
            train = released.dataset
            logger.info("privacy: \(train.name); ledger \(released.ledgerPath) spent \(released.spent) of \(request.budget)")
        }
        guard train.count > 0 else { throw CLIError.emptyData("the training set of \(source.dataset) is empty") }
        let trainImages = modelInput(train)
        let testImages = modelInput(split.test)
        let selection = try modelOptions.selection()
        let model = try selection.build(input: modelInputShape(train), classes: train.classes, seed: seed,
                                        threads: training.threadCount)
        logger.info("\(train.name): \(train.count) training and \(split.test.count) test images; \(selection.label) with \(model.parameterCount) parameters, \(training.threadCount) threads")

        let dp = try dpSGD.options.map { try CentralDPSGD(options: $0, datasetSize: train.count, batchSize: training.batchSize, epochs: training.epochs) }
        if let dp { let line = try dp.summary(); logger.info("\(line)") }
        let metrics = try metricsOut.map { try JSONLinesFile(path: $0) }
        let board = try tensorboard.writer(logger: logger)
        let bar = ProgressBar(enabled: isatty(STDERR_FILENO) == 1)
        for epoch in 1 ... training.epochs {
            let start = ContinuousClock.now
            var dpEpoch: DPSGDEpochReport?
            if let dp {  // record-level DP-SGD: ends early once the target ε allows no further step
                dpEpoch = try trainImages.withUnsafeBufferPointer { ib in try train.labels.withUnsafeBufferPointer { lb in try dp.epoch(model, images: ib, labels: lb, sgd: training.sgd) } }
                if dpEpoch == nil { logger.info("DP-SGD: the target epsilon allows no further step; stopping"); break }
            }
            let result: (meanLoss: Double, examples: Int)
            if let e = dpEpoch { result = (e.loss, e.examples) } else {
                let r = try trainImages.withUnsafeBufferPointer { ib in
                    try train.labels.withUnsafeBufferPointer { lb in
                        try model.train(images: ib, labels: lb, epochs: 1, batchSize: training.batchSize,
                                        sgd: training.sgd, seed: seed &+ UInt64(epoch)) { p in
                            bar.update(epoch: epoch, of: training.epochs, step: p.step, of: p.stepsPerEpoch,
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
                              epoch, training.epochs, result.meanLoss, eval.loss, eval.accuracy, seconds, rate)
            logger.info("\(line)\(dpEpoch.map { String(format: "  epsilon %.4g (delta %g)", $0.epsilon, dpSGD.delta) } ?? "")")
            if let e = dpEpoch {
                try metrics?.append(["epoch": .int(Int64(epoch)), "loss": .double(result.meanLoss), "accuracy": .double(eval.accuracy),
                                     "test_loss": .double(eval.loss), "seconds": .double(seconds), "images_per_s": .double(rate),
                                     "epsilon": .double(e.epsilon), "delta": .double(dpSGD.delta)])
            } else {
                try metrics?.append(["epoch": .int(Int64(epoch)), "loss": .double(result.meanLoss), "accuracy": .double(eval.accuracy),
                                     "test_loss": .double(eval.loss), "seconds": .double(seconds), "images_per_s": .double(rate)])
            }
            try board?.add(step: epoch, scalars: [("accuracy", eval.accuracy), ("loss", result.meanLoss),
                                                  ("test_loss", eval.loss), ("round_seconds", seconds)]
                           + ((dpEpoch?.epsilon ?? privacy.dpEpsilon).map { [("epsilon", $0)] } ?? []))
        }
        if let path = modelOut {
            try writeModel(try Parameters(shapes: model.layout, values: model.parameters()), to: path)
            logger.info("model written to \(path)")
        }
    }
}
