import CIFARLoader
import CNNModel
import FlowerCore
import Foundation
import Logging

/// Local training settings a client uses when the server's FitIns config does not set them.
struct TrainingDefaults: Sendable {
    var epochs = 1
    var batchSize = 32
    var learningRate: Float = 0.01
    var momentum: Float = 0.9
    var weightDecay: Float = 0
    var seed: UInt64 = 42
}

/// A client's local data: raw bytes (or a privatised float copy) until a fit or evaluate
/// converts them to float32 NCHW in [0, 1], so idle clients hold no float copy.
struct LocalData: Sendable {
    let dataset: Dataset
    /// Number of examples.
    var count: Int { dataset.count }
    /// The images as float32 NCHW scaled to [-1, 1] (see `modelInput`) and the labels.
    func materialize() -> (images: [Float], labels: [Int32]) { (modelInput(dataset), dataset.labels) }
}

/// A dataset's images as the CNN sees them everywhere (clients, central evaluation, `flwr
/// train`): pixels in [0, 1] mapped to 2x − 1, i.e. [-1, 1], as Flower's PyTorch examples do with
/// `Normalize((0.5,), (0.5,))`. A fixed map keeps every client's inputs on the same scale
/// (per-partition statistics would not be), and zero-centred inputs train faster than [0, 1].
func modelInput(_ dataset: Dataset) -> [Float] {
    var images = dataset.allImages()
    images.withUnsafeMutableBufferPointer { buf in
        for i in buf.indices { buf[i] = buf[i] * 2 - 1 }
    }
    return images
}

/// A client-side failure, reported to the server as a failed result.
enum ClientError: Error, CustomStringConvertible {
    case badParameters(String)

    var description: String {
        switch self {
        case .badParameters(let why):
            return "the server's parameters do not fit this client's model (\(why)); server and clients must use the same --dataset"
        }
    }
}

/// The reference CNN as a FlowerCore `Client`: fit trains on the local partition, evaluate
/// measures loss and accuracy on the local evaluation data.
final class CNNClient: Client {
    let partition: Int
    let train: LocalData
    let eval: LocalData?
    let pool: ModelPool
    let defaults: TrainingDefaults
    let logger: Logger

    init(partition: Int, train: LocalData, eval: LocalData?, pool: ModelPool, defaults: TrainingDefaults, logger: Logger) {
        self.partition = partition
        self.train = train
        self.eval = eval
        self.pool = pool
        self.defaults = defaults
        self.logger = logger
    }

    func getParameters(_ ins: GetParametersIns) async throws -> ParametersRes {
        try await pool.withModel { model in
            ParametersRes(parameters: try Parameters(shapes: model.layout, values: model.parameters()))
        }
    }

    func fit(_ ins: FitIns) async throws -> FitRes {
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
        return try await pool.withModel(work: data.count * epochs) { model in
            try load(ins.parameters, into: model)
            let (images, labels) = data.materialize()
            let result = try images.withUnsafeBufferPointer { ib in
                try labels.withUnsafeBufferPointer { lb in
                    try model.train(images: ib, labels: lb, epochs: epochs, batchSize: batchSize, sgd: sgd, seed: seed)
                }
            }
            let seconds = (ContinuousClock.now - start).seconds
            let params = try Parameters(shapes: model.layout, values: model.parameters())
            return FitRes(round: ins.round, parameters: params, numExamples: labels.count,
                          metrics: ["train_loss": .double(result.meanLoss),
                                    "images_per_s": .double(Double(result.examples) / max(seconds, 1e-9))])
        }
    }

    func evaluate(_ ins: EvaluateIns) async throws -> EvaluateRes {
        guard let data = eval else {
            return EvaluateRes(status: Status(code: .evaluateFailed, message: "client \(partition) has no evaluation data"),
                               round: ins.round, loss: 0, numExamples: 0)
        }
        return try await pool.withModel(work: data.count) { model in
            try load(ins.parameters, into: model)
            let (images, labels) = data.materialize()
            let r = try images.withUnsafeBufferPointer { ib in
                try labels.withUnsafeBufferPointer { lb in try model.evaluate(images: ib, labels: lb) }
            }
            return EvaluateRes(round: ins.round, loss: r.loss, numExamples: r.examples,
                               metrics: ["accuracy": .double(r.accuracy)])
        }
    }

    private func load(_ parameters: Parameters, into model: CNN) throws {
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

extension Duration {
    /// The duration in seconds as a Double.
    var seconds: Double {
        let (s, a) = components
        return Double(s) + Double(a) * 1e-18
    }
}
