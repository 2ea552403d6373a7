import CIFARLoader
import CNNModel
import FlowerCore
import Foundation
import Logging

/// Local training settings a client uses when the server's FitIns config does not set them.
public struct TrainingDefaults: Sendable {
    /// Local epochs per fit.
    public var epochs = 1
    /// Minibatch size.
    public var batchSize = 32
    /// SGD learning rate, momentum and L2 weight decay.
    public var learningRate: Float = 0.01, momentum: Float = 0.9, weightDecay: Float = 0
    /// Seed of shuffling (mixed with the round and partition).
    public var seed: UInt64 = 42
    /// Defaults as given.
    public init(epochs: Int = 1, batchSize: Int = 32, learningRate: Float = 0.01, momentum: Float = 0.9,
                weightDecay: Float = 0, seed: UInt64 = 42) {
        self.epochs = epochs; self.batchSize = batchSize; self.learningRate = learningRate
        self.momentum = momentum; self.weightDecay = weightDecay; self.seed = seed
    }
}

/// A client's local data: raw bytes (or a privatised float copy) until a fit or evaluate
/// converts them to float32 NCHW in [0, 1], so idle clients hold no float copy.
public struct LocalData: Sendable {
    /// The examples.
    public let dataset: Dataset
    /// Wraps `dataset`.
    public init(dataset: Dataset) { self.dataset = dataset }
    /// Number of examples.
    public var count: Int { dataset.count }
    /// The images as float32 NCHW scaled to [-1, 1] (see `modelInput`) and the labels.
    public func materialize() -> (images: [Float], labels: [Int32]) { (modelInput(dataset), dataset.labels) }
}

/// A dataset's images as the CNN sees them everywhere (clients, central evaluation, `flwr
/// train`): pixels in [0, 1] mapped to 2x − 1, i.e. [-1, 1], as Flower's PyTorch examples do with
/// `Normalize((0.5,), (0.5,))`. A fixed map keeps every client's inputs on the same scale
/// (per-partition statistics would not be), and zero-centred inputs train faster than [0, 1].
public func modelInput(_ dataset: Dataset) -> [Float] {
    // Tabular features are already standardised by the loader (CIFARLoader/Tabular.swift).
    if dataset.inputKind == .features { return dataset.allImages() }
    var images = dataset.allImages()
    images.withUnsafeMutableBufferPointer { buf in
        for i in buf.indices { buf[i] = buf[i] * 2 - 1 }
    }
    return images
}

/// The fit metric carrying a DP-SGD site's ε so far (at its δ, "dp_sgd_delta"): what the server
/// shows per site, and what Flower's strategies can read from our clients.
public let dpSGDEpsilonMetric = siteEpsilonMetricKey

/// A client-side failure, reported to the server as a failed result.
public enum ClientError: Error, CustomStringConvertible {
    case badParameters(String)

    public var description: String {
        switch self {
        case .badParameters(let why):
            return "the server's parameters do not fit this client's model (\(why)); server and clients must use the same --dataset"
        }
    }
}

/// Any Model as a FlowerCore `Client`: fit trains on the local partition, evaluate measures loss
/// and accuracy on the local evaluation data. The FitIns config keys it reads: epochs,
/// batch_size, lr, momentum, weight_decay; the whole config reaches `fitHook` unchanged.
public final class ModelClient: Client {
    let partition: Int
    let train: LocalData
    let eval: LocalData?
    let pool: ModelPool
    let defaults: TrainingDefaults
    let logger: Logger
    /// When set, every fit trains with record-level DP-SGD, charged to the site's ledger.
    let dpSGD: DPSGDSite?

    /// Called inside every fit with the FitIns config, the model and the received (global)
    /// parameters; returns a gradient adjustment run before each SGD step, or nil (e.g. FedProx's
    /// proximal term for "proximal_mu").
    public let fitHook: (@Sendable (Config, UnsafeBufferPointer<Float>) -> ((UnsafeMutableBufferPointer<Float>, UnsafeBufferPointer<Float>) -> Void)?)?

    /// A client for `partition` training models from `pool`.
    public init(partition: Int, train: LocalData, eval: LocalData?, pool: ModelPool, defaults: TrainingDefaults, logger: Logger,
                fitHook: (@Sendable (Config, UnsafeBufferPointer<Float>) -> ((UnsafeMutableBufferPointer<Float>, UnsafeBufferPointer<Float>) -> Void)?)? = nil,
                dpSGD: DPSGDSite? = nil) {
        self.fitHook = fitHook
        self.dpSGD = dpSGD
        self.partition = partition
        self.train = train
        self.eval = eval
        self.pool = pool
        self.defaults = defaults
        self.logger = logger
    }

    public func getParameters(_ ins: GetParametersIns) async throws -> ParametersRes {
        try await pool.withModel { model in
            ParametersRes(parameters: try Parameters(shapes: model.layout, values: model.parameters()))
        }
    }

    public func fit(_ ins: FitIns) async throws -> FitRes {
        let c = ins.config
        let epochs = c["epochs"]?.intValue ?? defaults.epochs
        let batchSize = c["batch_size"]?.intValue ?? defaults.batchSize
        let sgd = SGDConfig(
            learningRate: c["lr"]?.doubleValue.map(Float.init) ?? defaults.learningRate,
            momentum: c["momentum"]?.doubleValue.map(Float.init) ?? defaults.momentum,
            weightDecay: c["weight_decay"]?.doubleValue.map(Float.init) ?? defaults.weightDecay,
            proximalMu: c["proximal_mu"]?.doubleValue.map(Float.init) ?? 0)  // FedProx (Strategies/FedProx.swift)
        // Each (seed, round, partition) shuffles differently and reproducibly.
        let seed = defaults.seed &+ UInt64(ins.round) &* 1_000_003 &+ UInt64(partition) &* 7_919
        let data = train
        let start = ContinuousClock.now
        let hook = fitHook, dp = dpSGD, round = ins.round
        return try await pool.withModel(work: data.count * epochs) { model in
            try Self.load(ins.parameters, into: model)
            let (images, labels) = data.materialize()
            let adjust = ins.parameters.values.withUnsafeBufferPointer { global in hook?(c, global) }
            if let dp {
                // Record-level DP-SGD: the ledger refuses the round (throws, naming the budget)
                // before any step when it would exceed the site's ε.
                let (r, epsilon) = try images.withUnsafeBufferPointer { ib in
                    try labels.withUnsafeBufferPointer { lb in
                        try dp.fit(model, images: ib, labels: lb, epochs: epochs, batchSize: batchSize, sgd: sgd,
                                   round: round, adjustGradients: adjust)
                    }
                }
                let seconds = (ContinuousClock.now - start).seconds
                return FitRes(round: ins.round, parameters: try Parameters(shapes: model.layout, values: model.parameters()),
                              numExamples: labels.count,
                              metrics: ["train_loss": .double(r.meanLoss),
                                        "images_per_s": .double(Double(r.examples) / max(seconds, 1e-9)),
                                        dpSGDEpsilonMetric: .double(epsilon), "dp_sgd_delta": .double(dp.options.delta),
                                        "dp_sgd_clipped_fraction": .double(r.clippedFraction)])
            }
            let result = try images.withUnsafeBufferPointer { ib in
                try labels.withUnsafeBufferPointer { lb in
                    try model.train(images: ib, labels: lb, epochs: epochs, batchSize: batchSize, sgd: sgd, seed: seed,
                                    adjustGradients: adjust, progress: nil)
                }
            }
            let seconds = (ContinuousClock.now - start).seconds
            let params = try Parameters(shapes: model.layout, values: model.parameters())
            return FitRes(round: ins.round, parameters: params, numExamples: labels.count,
                          metrics: ["train_loss": .double(result.meanLoss),
                                    "images_per_s": .double(Double(result.examples) / max(seconds, 1e-9))])
        }
    }

    public func evaluate(_ ins: EvaluateIns) async throws -> EvaluateRes {
        guard let data = eval else {
            return EvaluateRes(status: Status(code: .evaluateFailed, message: "client \(partition) has no evaluation data"),
                               round: ins.round, loss: 0, numExamples: 0)
        }
        return try await pool.withModel(work: data.count) { model in
            try Self.load(ins.parameters, into: model)
            let (images, labels) = data.materialize()
            let r = try images.withUnsafeBufferPointer { ib in
                try labels.withUnsafeBufferPointer { lb in try model.evaluate(images: ib, labels: lb) }
            }
            return EvaluateRes(round: ins.round, loss: r.loss, numExamples: r.examples,
                               metrics: ["accuracy": .double(r.accuracy)])
        }
    }

    static func load(_ parameters: Parameters, into model: any Model) throws {
        let expected = model.layout
        guard parameters.layout.count == expected.count else {
            throw ClientError.badParameters("\(parameters.layout.count) tensors, the model has \(expected.count)")
        }
        for (got, want) in zip(parameters.layout, expected) where got.name != want.name || got.shape != want.shape {
            throw ClientError.badParameters("got \(got.name) \(got.shape), the model has \(want.name) \(want.shape)")
        }
        try model.setParameters(parameters.values)
    }
}
