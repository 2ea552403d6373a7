// The DP-SGD ledger of one site: every batch of DP-SGD steps the site has run on its records,
// kept on disk (dp-sgd-ledger.json in the site's ledger directory) so that the account composes
// across rounds and restarts. ε is recomputed from the recorded (q, σ, steps) each time (RDP
// composes by addition), so the file holds only facts, never a rounded total. A round is charged
// *before* it trains: a round that would take ε past the budget is refused and nothing is spent;
// a round that fails after being charged stays charged (its noisy model may have been released).
//
// Written as the Laplace ledger is (CIFARLoader/PrivacyLedger.swift): JSON rewritten atomically
// under an exclusive flock on a sibling .lock file, so concurrent processes on one machine and a
// crash mid-write cannot lose a charge.
import Foundation

/// One site's DP-SGD spending, persisted as DIR/dp-sgd-ledger.json.
public struct DPSGDLedger: Sendable {
    /// File name inside the ledger directory.
    public static let fileName = "dp-sgd-ledger.json"

    /// One charged batch of steps.
    public struct Entry: Codable, Sendable, Equatable {
        /// Poisson sampling rate of each step.
        public var samplingRate: Double
        /// Noise multiplier of each step.
        public var noiseMultiplier: Double
        /// Steps charged.
        public var steps: Int
        /// What the steps were for (e.g. "round 3").
        public var label: String
        /// When, ISO 8601 UTC.
        public var time: String
    }

    private struct File: Codable {
        var format: String
        var delta: Double
        var budget: Double
        var epsilon: Double
        var entries: [Entry]
    }

    /// Path of the JSON file.
    public let path: String
    /// Every charge so far, oldest first.
    public private(set) var entries: [Entry]

    /// Opens (or prepares) the ledger in `directory`, creating the directory if needed.
    public init(directory: String) throws(PrivacyError) {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw .ledger(path: directory, reason: "cannot create the ledger directory: \(error.localizedDescription)")
        }
        path = (directory as NSString).appendingPathComponent(Self.fileName)
        entries = try Self.load(path)
    }

    /// ε at δ of everything charged so far (0 when nothing is).
    public func epsilon(delta: Double) throws(PrivacyError) -> Double {
        try Self.epsilon(entries, delta: delta)
    }

    /// Total steps charged.
    public var steps: Int { entries.reduce(0) { $0 + $1.steps } }

    private static func epsilon(_ entries: [Entry], delta: Double) throws(PrivacyError) -> Double {
        var account = RDPAccountant(orders: opacusRDPOrders, series: .opacus)
        for e in entries { try account.compose(samplingRate: e.samplingRate, noiseMultiplier: e.noiseMultiplier, count: e.steps) }
        return try account.epsilon(delta: delta).epsilon
    }

    /// Charges `steps` steps at (q, σ) if the total stays within `budget` at δ, re-reading the
    /// file under a lock first; returns ε after the charge. Throws `PrivacyError.overBudget`
    /// (nothing charged) otherwise.
    @discardableResult
    public mutating func charge(samplingRate q: Double, noiseMultiplier z: Double, steps: Int, delta: Double,
                                budget: Double, label: String) throws(PrivacyError) -> Double {
        guard budget.isFinite, budget > 0 else { throw .invalidEpsilon(budget) }
        guard steps >= 0, steps <= 1 << 40 else { throw .invalidRounds(steps) }
        let lockPath = path + ".lock"
        let lock = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard lock >= 0 else { throw .ledger(path: lockPath, reason: String(cString: strerror(errno))) }
        defer { close(lock) }
        while flock(lock, LOCK_EX) != 0 {
            guard errno == EINTR else { throw .ledger(path: lockPath, reason: "flock: " + String(cString: strerror(errno))) }
        }
        defer { flock(lock, LOCK_UN) }
        entries = try Self.load(path)
        let spent = try Self.epsilon(entries, delta: delta)
        let entry = Entry(samplingRate: q, noiseMultiplier: z, steps: steps, label: label,
                          time: ISO8601DateFormatter().string(from: Date()))
        let after = try Self.epsilon(entries + [entry], delta: delta)
        guard after <= budget * (1 + 1e-12) else {
            throw .overBudget(ledger: path, spent: spent, wouldBe: after, budget: budget, delta: delta)
        }
        let file = File(format: "flwr-dp-sgd-ledger/1", delta: delta, budget: budget, epsilon: after, entries: entries + [entry])
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        do {
            try encoder.encode(file).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw .ledger(path: path, reason: "cannot write: \(error.localizedDescription)")
        }
        entries.append(entry)
        return after
    }

    private static func load(_ path: String) throws(PrivacyError) -> [Entry] {
        guard FileManager.default.fileExists(atPath: path) else { return [] }
        do {
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            let file = try JSONDecoder().decode(File.self, from: data)
            for e in file.entries where !(e.samplingRate > 0 && e.samplingRate <= 1 && e.noiseMultiplier >= 0 && e.steps >= 0) {
                throw PrivacyError.ledger(path: path, reason: "entry \(e.label) has q \(e.samplingRate), sigma \(e.noiseMultiplier), steps \(e.steps)")
            }
            return file.entries
        } catch let error as PrivacyError {
            throw error
        } catch {
            throw .ledger(path: path, reason: "not a valid ledger (\(error))")
        }
    }
}
