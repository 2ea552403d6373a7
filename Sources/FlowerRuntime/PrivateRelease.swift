// `flwr privatize`: one client's data (a partition of a shared dataset, or a whole folder)
// released with Laplace noise as DIR/partition.npz, charged to the privacy ledger; with `resume`
// an identical earlier release is re-created from the seed the ledger recorded.
import CIFARLoader
import Foundation

/// What to release and where.
public struct PrivateReleaseConfig: Sendable {
    public var dataset: DatasetLocation
    /// The partition to release (nil: the whole folder).
    public var partition: Int?
    public var numPartitions = 10
    public var scheme: Partitioner = .iid
    public var seed: UInt64 = 42
    /// ε, unit, budget, noise seed, ledger folder (default: `out`).
    public var privacy: DataPrivacy
    public var resume = false
    /// Output folder: partition.npz (and test.npz with `includeTest`).
    public var out: String
    public var includeTest = false

    public init(dataset: DatasetLocation, privacy: DataPrivacy, out: String) {
        self.dataset = dataset
        self.privacy = privacy
        self.out = out
    }
}

/// Writes one Laplace release and charges the ledger.
public struct PrivateRelease {
    public let config: PrivateReleaseConfig

    public init(config: PrivateReleaseConfig) { self.config = config }

    /// Releases the data; returns the lines the command prints (nothing without ε).
    public func run() throws -> [String] {
        let c = config
        guard var request = try c.privacy.request(defaultLedgerDirectory: c.out) else { return [] }
        let split = try c.partition.map {
            try loadPartition(c.dataset.kind, dataDir: c.dataset.dataDir, index: $0, numPartitions: c.numPartitions,
                              scheme: c.scheme, seed: c.seed, files: c.dataset.files)
        } ?? c.dataset.load()
        if c.resume {
            let fingerprint = split.train.fingerprint()
            let ledger = try PrivacyLedger(directory: request.ledgerDirectory)
            if let earlier = ledger.releases.last(where: {
                $0.fingerprint == fingerprint && $0.epsilon == request.epsilon && $0.unit == request.unit
            }), let seed = UInt64(earlier.seed) {
                request.seed = seed
            }
        }
        let result = try privatize(split.train, request: request)
        do {
            try FileManager.default.createDirectory(atPath: c.out, withIntermediateDirectories: true)
        } catch {
            throw RuntimeError.io(path: c.out, detail: "cannot create the folder (\(error.localizedDescription))")
        }
        let path = (c.out as NSString).appendingPathComponent(npzPartitionFile)
        try NPZ.writeDataset(result.dataset, to: path)
        if c.includeTest && split.test.count > 0 {
            try NPZ.writeDataset(split.test, to: (c.out as NSString).appendingPathComponent(npzTestFile))
        }
        let d = split.train.imageSize
        let scale = LaplaceDP(epsilon: request.epsilon, unit: request.unit, seed: 0).scale(imageSize: d)
        let cost: String
        switch result.outcome {
        case .charged(let charged): cost = "charged ε \(charged)"
        case .reused: cost = "identical to an earlier release: nothing more spent"
        }
        return [
            "\(split.train.name): \(split.train.count) images of \(split.train.channels)×\(split.train.height)×\(split.train.width)",
            "Laplace noise: ε \(request.epsilon) per \(request.unit.rawValue), Δ \(request.unit == .pixel ? 1 : d), scale \(scale)",
            "ledger \(result.ledgerPath): \(cost); spent \(result.spent) of \(request.budget) (\(result.ledgerUnit.rawValue) level)",
            "wrote \(path)",
        ]
    }
}
