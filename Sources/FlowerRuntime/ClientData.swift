// What a client trains and evaluates on: the dataset's location, one partition of it (or the
// whole folder), the data-level Laplace release when ε is set, and the training data a
// label-flipping attacker uses.
import Attacks
import CIFARLoader
import FlowerCore
import FlowerIdentity
import FlowerLearning
import Foundation
import Logging

/// Where a dataset is read from.
public struct DatasetLocation: Sendable, Equatable {
    public var kind: DatasetKind
    /// The folder (nil: the dataset's default location).
    public var dataDir: String?
    public var files: DataFiles

    public init(kind: DatasetKind, dataDir: String? = nil, files: DataFiles = DataFiles()) {
        self.kind = kind; self.dataDir = dataDir; self.files = files
    }

    /// Reads the training and test sets.
    public func load() throws -> DatasetSplit { try loadDataset(kind, dataDir: dataDir, files: files) }
}

/// A data-level Laplace release (ε per pixel or image) and its ledger; `epsilon` nil for none.
public struct DataPrivacy: Sendable, Equatable {
    public var epsilon: Double?
    public var unit: LaplaceDP.Unit = .pixel
    /// The ledger's total budget (nil: ε, one release).
    public var budget: Double?
    /// The noise seed (nil: a fresh one from the system's secure source).
    public var seed: UInt64?
    /// The ledger's folder (nil: the caller's default).
    public var ledgerDirectory: String?

    public init(epsilon: Double? = nil, unit: LaplaceDP.Unit = .pixel, budget: Double? = nil, seed: UInt64? = nil,
                ledgerDirectory: String? = nil) {
        self.epsilon = epsilon; self.unit = unit; self.budget = budget; self.seed = seed; self.ledgerDirectory = ledgerDirectory
    }

    /// The release asked for, or nil without ε.
    public func request(defaultLedgerDirectory: String) throws -> PrivacyRequest? {
        guard let epsilon else { return nil }
        let request = PrivacyRequest(epsilon: epsilon, unit: unit, budget: budget ?? epsilon,
                                     seed: seed ?? PrivacyRequest.freshSeed(),
                                     ledgerDirectory: ledgerDirectory ?? defaultLedgerDirectory)
        try request.validate()
        return request
    }
}

/// Builds a client's local training and evaluation data from the shared dataset.
public struct ClientDataBuilder {
    public let numPartitions: Int
    public let scheme: Partitioner
    public let seed: UInt64
    public let privacy: DataPrivacy
    public let maxTrainExamples: Int?
    public let logger: Logger

    public init(numPartitions: Int, scheme: Partitioner, seed: UInt64, privacy: DataPrivacy, maxTrainExamples: Int?,
                logger: Logger) {
        self.numPartitions = numPartitions; self.scheme = scheme; self.seed = seed; self.privacy = privacy
        self.maxTrainExamples = maxTrainExamples; self.logger = logger
    }

    /// The training set's split into `numPartitions` partitions (compute it once for many clients).
    public func partitions(of split: DatasetSplit) throws -> [[Int]] {
        try CIFARLoader.partition(labels: split.train.labels, numPartitions: numPartitions, scheme: scheme, seed: seed)
    }

    /// The client's share: partition `index` of the training set (noised when DP is on) and
    /// every `numPartitions`-th test image as its evaluation set. `parts`: the split from
    /// `partitions(of:)`, computed here when not given.
    public func build(split: DatasetSplit, parts: [[Int]]? = nil, partition index: Int,
                      ledgerDirectory: String) throws -> (train: LocalData, eval: LocalData?) {
        var indices = try (parts ?? partitions(of: split))[index]
        if let m = maxTrainExamples, m < indices.count { indices = Array(indices.prefix(m)) }
        var train = split.train.subset(indices)
        if let request = try privacy.request(defaultLedgerDirectory: ledgerDirectory) {
            let released = try privatize(train, request: request)
            train = released.dataset
            logger.info("partition \(index): \(train.name); ledger \(released.ledgerPath): spent \(released.spent) of \(request.budget)")
        }
        let testIndices = Array(stride(from: index, to: split.test.count, by: numPartitions))
        let eval = testIndices.isEmpty ? nil : LocalData(dataset: split.test.subset(testIndices))
        return (LocalData(dataset: train), eval)
    }

    /// The client's training and evaluation data for `selection`: for `.whole`, the training set
    /// as read (noised when DP is on) and the test set when the folder has one.
    public func build(split: DatasetSplit, selection: DataSelection,
                      ledgerDirectory: String) throws -> (train: LocalData, eval: LocalData?) {
        if case let .partition(index, _) = selection {
            return try build(split: split, partition: index, ledgerDirectory: ledgerDirectory)
        }
        var train = split.train
        if train.count == 0 { throw RuntimeError.emptyData("\(train.name) holds no training examples") }
        if let m = maxTrainExamples, m < train.count { train = train.subset(Array(0 ..< m)) }
        if let request = try privacy.request(defaultLedgerDirectory: ledgerDirectory) {
            let released = try privatize(train, request: request)
            train = released.dataset
            logger.info("\(train.name); ledger \(released.ledgerPath): spent \(released.spent) of \(request.budget)")
        }
        let eval = split.test.count == 0 ? nil : LocalData(dataset: split.test)
        return (LocalData(dataset: train), eval)
    }
}

/// A malicious client's behaviour (nil settings: an honest client).
public enum AttackPlan {
    /// `client` as is, or wrapped as a malicious client of `partition`.
    public static func wrap(_ client: any Client, settings: AttackSettings?, partition: Int) -> any Client {
        guard let settings else { return client }
        return MaliciousClient(wrapping: client, settings: settings, partition: partition)
    }

    /// `data` with flipped labels under `label-flip`, else unchanged.
    public static func trainingData(_ data: Dataset, settings: AttackSettings?) -> Dataset {
        guard settings?.kind.changesData == true else { return data }
        var d = data
        d.labels = flipLabels(d.labels, classes: d.classes)
        return d
    }
}
