// PrivacyLedger: the record, beside a client's data, of every noised release of that data:
// ε, unit, seed, dataset fingerprint, time. Epsilons add up (basic sequential composition); a
// release that would take the total past the budget is refused. A release identical to one
// already recorded (same data fingerprint, ε, unit and seed) yields the very same bytes, so
// re-creating it (after a restart, or to train on it again) spends nothing more: it is
// post-processing of what was already released.
//
// Accounting unit: fixed by the first release. An image-level ε-DP release is also pixel-level
// ε-DP, so it costs ε in a pixel ledger; a pixel-level ε release is only d·ε-DP per image, so it
// costs d·ε in an image ledger.
//
// The file is JSON (privacy-ledger.json), rewritten atomically under an exclusive flock, so it
// survives restarts and concurrent writers on one machine. It records the noise seeds: keep it
// as private as the raw data.
import Foundation

/// The ε spent on one client's data, persisted as DIR/privacy-ledger.json.
public struct PrivacyLedger: Sendable {
    /// File name of the ledger inside its directory.
    public static let fileName = "privacy-ledger.json"

    /// One noised release.
    public struct Release: Codable, Sendable, Equatable {
        /// ε of the mechanism.
        public var epsilon: Double
        /// What ε protected.
        public var unit: LaplaceDP.Unit
        /// C·H·W of the images (converts pixel-level ε to image-level).
        public var pixelsPerImage: Int
        /// Noise seed (a decimal string: JSON numbers lose precision above 2^53).
        public var seed: String
        /// `Dataset.fingerprint()` of the data before noise.
        public var fingerprint: String
        /// ε charged to the ledger for this release, in the ledger's unit.
        public var charged: Double
        /// Budget in force when it was released.
        public var budget: Double
        /// When, ISO 8601 UTC.
        public var time: String
    }

    /// What `record` did.
    public enum Outcome: Sendable, Equatable {
        /// A new release, charged this much ε.
        case charged(Double)
        /// Identical to an earlier release: nothing more spent.
        case reused
    }

    private struct File: Codable {
        var format: String
        var unit: LaplaceDP.Unit?
        var spent: Double
        var releases: [Release]
    }

    /// Path of the JSON file.
    public let path: String
    /// The accounting unit (set by the first release).
    public private(set) var unit: LaplaceDP.Unit?
    /// Every release so far, oldest first.
    public private(set) var releases: [Release]

    /// Total ε spent, in the ledger's unit.
    public var spent: Double { releases.reduce(0) { $0 + $1.charged } }

    /// Opens (or prepares) the ledger in `directory`, creating the directory if needed.
    public init(directory: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw LoaderError.writeFailed(path: directory, reason: "cannot create the ledger directory: \(error.localizedDescription)")
        }
        path = joinPath(directory, Self.fileName)
        (unit, releases) = try Self.load(path)
    }

    /// The ε this release would be charged in this ledger.
    public func charge(epsilon: Double, unit releaseUnit: LaplaceDP.Unit, pixelsPerImage: Int) -> Double {
        switch (unit ?? releaseUnit, releaseUnit) {
        case (.pixel, _), (.image, .image): return epsilon
        case (.image, .pixel): return epsilon * Double(pixelsPerImage)
        }
    }

    /// The earlier release with the same data, ε, unit and seed, if any.
    public func existingRelease(epsilon: Double, unit: LaplaceDP.Unit, seed: UInt64, fingerprint: String) -> Release? {
        releases.first { $0.epsilon == epsilon && $0.unit == unit && $0.seed == String(seed) && $0.fingerprint == fingerprint }
    }

    /// Records a release (re-reading the file under a lock first), or refuses it with
    /// `LoaderError.overBudget` if spent + charge would exceed `budget`. An identical earlier
    /// release is `.reused` and costs nothing.
    @discardableResult
    public mutating func record(epsilon: Double, unit releaseUnit: LaplaceDP.Unit, pixelsPerImage: Int,
                                seed: UInt64, fingerprint: String, budget: Double) throws -> Outcome {
        guard epsilon > 0, epsilon.isFinite else { throw LoaderError.invalidPrivacy("--dp-epsilon is \(epsilon); it must be a positive number") }
        guard budget > 0, !budget.isNaN else { throw LoaderError.invalidPrivacy("--privacy-budget is \(budget); it must be a positive number") }
        let lockPath = path + ".lock"
        let lock = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard lock >= 0 else { throw LoaderError.writeFailed(path: lockPath, reason: String(cString: strerror(errno))) }
        defer { close(lock) }
        while flock(lock, LOCK_EX) != 0 {
            guard errno == EINTR else { throw LoaderError.writeFailed(path: lockPath, reason: "flock: " + String(cString: strerror(errno))) }
        }
        defer { flock(lock, LOCK_UN) }
        (unit, releases) = try Self.load(path)  // another process may have recorded meanwhile

        if existingRelease(epsilon: epsilon, unit: releaseUnit, seed: seed, fingerprint: fingerprint) != nil {
            return .reused
        }
        let cost = charge(epsilon: epsilon, unit: releaseUnit, pixelsPerImage: pixelsPerImage)
        let already = spent
        guard already + cost <= budget * (1 + 1e-12) else {
            throw LoaderError.overBudget(ledger: path, spent: already, requested: cost, budget: budget,
                                         unit: (unit ?? releaseUnit).rawValue)
        }
        let formatter = ISO8601DateFormatter()
        let release = Release(epsilon: epsilon, unit: releaseUnit, pixelsPerImage: pixelsPerImage, seed: String(seed),
                              fingerprint: fingerprint, charged: cost, budget: budget, time: formatter.string(from: Date()))
        let newUnit = unit ?? releaseUnit
        let newReleases = releases + [release]
        try Self.save(File(format: "flwr-privacy-ledger/1", unit: newUnit,
                           spent: newReleases.reduce(0) { $0 + $1.charged }, releases: newReleases), to: path)
        unit = newUnit; releases = newReleases
        return .charged(cost)
    }

    private static func load(_ path: String) throws -> (LaplaceDP.Unit?, [Release]) {
        guard fileExists(path) else { return (nil, []) }
        let bytes = try readFileBytes(path)
        do {
            let file = try JSONDecoder().decode(File.self, from: Data(bytes))
            return (file.unit, file.releases)
        } catch {
            throw LoaderError.malformed(path: path, detail: "the privacy ledger is not valid (\(error)); it is the record of ε already spent: restore it rather than delete it")
        }
    }

    private static func save(_ file: File, to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data: Data
        do { data = try encoder.encode(file) } catch {
            throw LoaderError.writeFailed(path: path, reason: "cannot encode the ledger: \(error)")
        }
        try data.withUnsafeBytes { try writeFileAtomically($0, to: path) }
    }
}
