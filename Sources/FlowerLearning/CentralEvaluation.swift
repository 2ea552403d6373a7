// Central evaluation: the server's test set evaluated on any Model, in shards on dedicated
// compute threads (ModelPool), and the seeded initial model.
import CIFARLoader
import CNNModel
import FlowerCore
import Logging

/// Central evaluation on the server's test set, and the seeded initial model.
public struct CentralEvaluation: Sendable {
    /// The seeded initial model (or the weights given with --initial-model).
    public var initialParameters: Parameters
    /// Evaluates parameters on the test set (nil: no test images).
    public let evaluateFn: (@Sendable (Int, Parameters) async throws -> (loss: Double, metrics: Metrics)?)?

    /// nil for `--dataset none`.
    public static func load(dataset: String, dataDir: String?, files: DataFiles = DataFiles(), maxTestExamples: Int?,
                            model: ModelSelection, threads: Int, seed: UInt64, logger: Logger) throws -> CentralEvaluation? {
        guard dataset != "none" else { return nil }
        let split = try loadDataset(try DatasetKind.parse(dataset), dataDir: dataDir, files: files)
        var test = split.test
        if let m = maxTestExamples, m < test.count { test = test.subset(Array(0 ..< m)) }
        return try CentralEvaluation(test: test, model: model, threads: threads, seed: seed, logger: logger)
    }

    /// Evaluates on `test` (no evaluation when it is empty) with a model seeded by `seed`. The test
    /// set is cut into `threads` contiguous shards evaluated at once by single-threaded models
    /// (no synchronisation inside a forward pass, which at inference batch sizes costs more
    /// than it splits); losses and hits are summed over the shards.
    public init(test: Dataset, model: ModelSelection, threads: Int, seed: UInt64, logger: Logger) throws {
        let shards = max(1, min(threads, test.count))
        let input = modelInputShape(test), classes = test.classes
        let pool = ModelPool(size: shards) { try model.build(input: input, classes: classes, seed: seed, threads: 1) }
        initialParameters = try pool.withModelNow { model in try Parameters(shapes: model.layout, values: model.parameters()) }
        guard test.count > 0 else {
            logger.warning("\(test.name) has no test images: no central evaluation")
            evaluateFn = nil
            return
        }
        logger.info("central evaluation on \(test.count) test images of \(test.name)")
        let images = modelInput(test)
        let labels = test.labels
        let imageSize = input.count
        let bounds = (0 ... shards).map { $0 * test.count / shards }
        evaluateFn = { _, parameters in
            let parts = try await withThrowingTaskGroup(of: EvalResult.self) { group in
                for s in 0 ..< shards {
                    group.addTask {
                        try await pool.withModel { model in
                            try model.setParameters(parameters.values)
                            let (lo, hi) = (bounds[s], bounds[s + 1])
                            return try images.withUnsafeBufferPointer { ib in
                                try labels.withUnsafeBufferPointer { lb in
                                    try model.evaluate(images: UnsafeBufferPointer(rebasing: ib[lo * imageSize ..< hi * imageSize]),
                                                       labels: UnsafeBufferPointer(rebasing: lb[lo ..< hi]))
                                }
                            }
                        }
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let n = Double(parts.reduce(0) { $0 + $1.examples })
            let loss = parts.reduce(0.0) { $0 + $1.loss * Double($1.examples) } / n
            let accuracy = parts.reduce(0.0) { $0 + $1.accuracy * Double($1.examples) } / n
            return (loss, ["accuracy": .double(accuracy)])
        }
    }
}

