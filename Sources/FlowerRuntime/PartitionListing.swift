// `flwr partition`: how a dataset's training set splits among clients, one label histogram row
// per partition (a summary above `rowLimit` partitions), and optionally the split's indices as .npz.
import CIFARLoader

/// One listing of a split: the dataset, the partitioner and seed every client would use.
public struct PartitionListing: Sendable {
    /// The most partitions printed as one row each without `all`.
    public static let rowLimit = 50

    public var dataset: DatasetLocation
    public var numPartitions: Int
    public var scheme: Partitioner
    public var seed: UInt64
    /// One row per partition even above `rowLimit`.
    public var all = false
    /// Where to write the split as arrays p0, p1, … of training-set indices (int64, ascending).
    public var indicesOut: String?

    public init(dataset: DatasetLocation, numPartitions: Int, scheme: Partitioner, seed: UInt64) {
        self.dataset = dataset; self.numPartitions = numPartitions; self.scheme = scheme; self.seed = seed
    }

    /// Loads the training set, splits it, hands each line of the listing to `emit` and writes `indicesOut`.
    public func run(emit: (String) -> Void) throws {
        let train = try dataset.load().train
        let parts = try partition(labels: train.labels, numPartitions: numPartitions, scheme: scheme, seed: seed)
        let histogram = labelHistogram(labels: train.labels, partitions: parts, classes: train.classes)
        emit("\(train.name): \(train.count) samples, \(train.classes) classes, \(numPartitions) partitions (\(scheme.summary), seed \(seed))")
        emit(parts.count > Self.rowLimit && !all ? partitionSummary(histogram) : histogramTable(histogram))
        guard let path = indicesOut else { return }
        try NPZ.write(parts.enumerated().map { p, indices in
            NPZArray(name: "p\(p)", shape: [indices.count], int64s: indices.map { Int64($0) })
        }, to: path)
        emit("wrote \(path): \(parts.count) index arrays p0…p\(parts.count - 1)")
    }
}

extension Partitioner {
    /// The split in words: IID, IID with lognormal sizes, or Dirichlet with its α and minimum size.
    public var summary: String {
        switch self {
        case .iid: return "IID"
        case .dirichlet(let alpha, let minPartitionSize): return "Dirichlet α=\(alpha), min size \(minPartitionSize)"
        case .lognormal(let sigma): return "IID, \(PartitionSizes.lognormal(sigma: sigma)) sizes"
        }
    }
}
