// Privatize: what `flwr privatize` does and what `flwr client` / `flwr train` call to privatise
// on the fly with the same flags: pick a client's partition, charge the ledger (or recognise an
// identical earlier release), then clip, add Laplace noise and clip.

/// The privacy flags of a release: --dp-epsilon, --dp-unit, --privacy-budget, --dp-seed, ledger folder.
public struct PrivacyRequest: Sendable {
    /// ε of this release (> 0).
    public var epsilon: Double
    /// What ε protects.
    public var unit: LaplaceDP.Unit
    /// The ledger's total budget (> 0); a release past it is refused.
    public var budget: Double
    /// Noise seed: the same seed on the same data re-creates the same release at no extra cost.
    public var seed: UInt64
    /// Folder holding privacy-ledger.json (created if missing).
    public var ledgerDirectory: String

    /// Collects the flags of one release.
    public init(epsilon: Double, unit: LaplaceDP.Unit, budget: Double, seed: UInt64, ledgerDirectory: String) {
        self.epsilon = epsilon; self.unit = unit; self.budget = budget; self.seed = seed
        self.ledgerDirectory = ledgerDirectory
    }

    /// A seed from the system's cryptographic source, for releases nobody should be able to undo.
    public static func freshSeed() -> UInt64 {
        var system = SystemRandomNumberGenerator()
        return system.next()
    }

    /// Checks ε and the budget before any data is touched.
    public func validate() throws {
        guard epsilon > 0, epsilon.isFinite else {
            throw LoaderError.invalidPrivacy("--dp-epsilon is \(epsilon); it must be a positive number (smaller is more private and noisier)")
        }
        guard budget > 0, !budget.isNaN else {
            throw LoaderError.invalidPrivacy("--privacy-budget is \(budget); it must be a positive number")
        }
        guard epsilon <= budget else {
            throw LoaderError.invalidPrivacy("--dp-epsilon \(fmt(epsilon)) exceeds --privacy-budget \(fmt(budget)); lower ε or raise the budget")
        }
    }
}

/// A privatised dataset and what it cost.
public struct PrivatizedData: Sendable {
    /// The noised images (float32 in [0, 1]) with the original labels.
    public var dataset: Dataset
    /// Charged, or reused at no cost.
    public var outcome: PrivacyLedger.Outcome
    /// Total ε spent in the ledger after this release, in `ledgerUnit`.
    public var spent: Double
    /// The ledger's accounting unit.
    public var ledgerUnit: LaplaceDP.Unit
    /// Path of the ledger file.
    public var ledgerPath: String
}

/// Charges the ledger for `request` on `data` (refusing past the budget), then returns the data
/// clipped, noised with Laplace(0, Δ/ε) and clipped again. Nothing is noised if the ledger refuses.
public func privatize(_ data: Dataset, request: PrivacyRequest) throws -> PrivatizedData {
    guard data.inputKind == .pixels else {
        throw LoaderError.invalidPrivacy("\(data.name): the Laplace preprocessor's sensitivity assumes pixels in [0, 1]; tabular features are unbounded, so it cannot release them with a stated ε (train without --dp-epsilon)")
    }
    try request.validate()
    var ledger = try PrivacyLedger(directory: request.ledgerDirectory)
    let outcome = try ledger.record(epsilon: request.epsilon, unit: request.unit, pixelsPerImage: data.imageSize,
                                    seed: request.seed, fingerprint: data.fingerprint(), budget: request.budget)
    var pixels = data.allImages()
    LaplaceDP(epsilon: request.epsilon, unit: request.unit, seed: request.seed).privatize(&pixels, imageSize: data.imageSize)
    let noised = Dataset(floats: pixels, labels: data.labels, channels: data.channels, height: data.height,
                         width: data.width, classes: data.classes,
                         name: "\(data.name) (Laplace ε=\(fmt(request.epsilon)) per \(request.unit.rawValue))")
    return PrivatizedData(dataset: noised, outcome: outcome, spent: ledger.spent,
                          ledgerUnit: ledger.unit ?? request.unit, ledgerPath: ledger.path)
}

/// A client's share: partition `index` of the training set (test set whole), computed from the
/// same (labels, numPartitions, scheme, seed) every client uses. Only the partition's raw bytes
/// are copied.
public func loadPartition(_ kind: DatasetKind, dataDir: String?, index: Int, numPartitions: Int,
                          scheme: Partitioner, seed: UInt64, files: DataFiles = DataFiles()) throws -> DatasetSplit {
    guard index >= 0 && index < numPartitions else {
        throw LoaderError.invalidPartitioning("--partition \(index) is outside 0..<\(numPartitions) (--num-partitions)")
    }
    let split = try loadDataset(kind, dataDir: dataDir, files: files)
    let parts = try partition(labels: split.train.labels, numPartitions: numPartitions, scheme: scheme, seed: seed)
    var train = split.train.subset(parts[index])
    train.name = "\(split.train.name) partition \(index)/\(numPartitions)"
    return DatasetSplit(train: train, test: split.test)
}
