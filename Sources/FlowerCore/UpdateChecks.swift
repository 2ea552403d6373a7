/// Checks the round loop applies to every client answer, whatever the strategy: everything a
/// client reports is hostile until bounded (numbers that would overflow a sum, non-finite losses
/// and metrics), and the update's distance from the global model is measured (for clipping and
/// to notice an outlier that a non-robust strategy accepted).

/// Why an answer is refused before it reaches the strategy.
public enum AnswerRejection: Error, Sendable, Equatable, CustomStringConvertible {
    /// `numExamples` above the server's `--max-examples`.
    case tooManyExamples(Int, max: Int)
    /// `numExamples` zero or negative where a weight is needed.
    case nonPositiveExamples(Int)
    /// A non-finite loss.
    case nonFiniteLoss(Double)
    /// A non-finite numeric metric.
    case nonFiniteMetric(name: String, value: Double)

    public var description: String {
        switch self {
        case .tooManyExamples(let n, let max):
            return "claims numExamples = \(n), above --max-examples \(max); a client cannot have trained on more examples than that (raise --max-examples if it really has)"
        case .nonPositiveExamples(let n):
            return "reports numExamples = \(n); a client must use at least one example"
        case .nonFiniteLoss(let x):
            return "reports a non-finite loss (\(x)); the client diverged or is faulty"
        case .nonFiniteMetric(let name, let x):
            return "reports a non-finite metric \(name) = \(x); the client diverged or is faulty"
        }
    }
}

/// Bounds on what a client may report.
public enum AnswerChecks {
    /// The default `--max-examples`: 2³¹.
    public static let defaultMaxExamples = 1 << 31

    /// Throws when `numExamples` is not in `1...maxExamples`.
    public static func checkExamples(_ numExamples: Int, max maxExamples: Int) throws(AnswerRejection) {
        guard numExamples > 0 else { throw .nonPositiveExamples(numExamples) }
        guard numExamples <= maxExamples else { throw .tooManyExamples(numExamples, max: maxExamples) }
    }

    /// Throws on the first non-finite numeric metric (metrics are checked in name order).
    public static func checkMetrics(_ metrics: Metrics) throws(AnswerRejection) {
        for key in metrics.keys.sorted() {
            if case .double(let x) = metrics[key], !x.isFinite { throw .nonFiniteMetric(name: key, value: x) }
        }
    }

    /// Throws when `loss` is NaN or infinite.
    public static func checkLoss(_ loss: Double) throws(AnswerRejection) {
        guard loss.isFinite else { throw .nonFiniteLoss(loss) }
    }
}

/// ‖update − global‖₂ in Double, or nil when the layouts differ or a value is not finite.
public func updateNorm(_ update: Parameters, from global: Parameters) -> Double? {
    guard update.hasSameLayout(as: global) else { return nil }
    return update.values.withUnsafeBufferPointer { u in
        global.values.withUnsafeBufferPointer { g -> Double? in
            var sum = 0.0
            for i in 0 ..< u.count {
                let d = Double(u[i]) - Double(g[i])
                sum += d * d
            }
            return sum.isFinite ? sum.squareRoot() : nil
        }
    }
}

/// Server-side update clipping: `global + (update − global) · min(1, c / ‖update − global‖₂)`.
/// An update within the bound (or of norm 0) is returned unchanged; `norm` is its distance.
public func clipUpdate(_ update: Parameters, around global: Parameters, norm: Double,
                       maxNorm c: Double) -> Parameters {
    guard norm > c, norm > 0 else { return update }
    let scale = c / norm
    var out = update
    out.values.withUnsafeMutableBufferPointer { u in
        global.values.withUnsafeBufferPointer { g in
            for i in 0 ..< u.count {
                u[i] = Float(Double(g[i]) + (Double(u[i]) - Double(g[i])) * scale)
            }
        }
    }
    return out
}

/// An update the strategy accepted (`add` took it) far larger than the others of its round: the likely cause when honest
/// updates diverge in the next round.
public struct OutlierNote: Sendable, Equatable, CustomStringConvertible {
    /// The round that accepted it.
    public var round: Int
    /// The client that sent it.
    public var clientID: String
    /// Its ‖wᵢ − w‖₂.
    public var norm: Double
    /// Its norm divided by the median norm of the round's updates.
    public var ratio: Double

    /// A note of `clientID`'s update in `round`, of norm `norm`, `ratio` times the median.
    public init(round: Int, clientID: String, norm: Double, ratio: Double) {
        self.round = round
        self.clientID = clientID
        self.norm = norm
        self.ratio = ratio
    }

    /// A ratio above this, with at least 3 updates, marks the largest update as an outlier.
    public static let threshold = 10.0

    public var description: String {
        "in round \(round) client \(clientID) sent an outlier update (\(size)) that the strategy accepted"
    }

    /// The update's norm and its ratio to the round's median, for log lines.
    public var size: String {
        "‖wᵢ − w‖₂ = \(String(format: "%.3g", norm)), \(String(format: "%.0f", ratio))× the round's median"
    }

    /// The outlier among `norms` (client, norm) of one round, if the largest is over `threshold`
    /// times the median; nil with fewer than 3 updates.
    public static func find(round: Int, norms: [(client: String, norm: Double)]) -> OutlierNote? {
        guard norms.count >= 3 else { return nil }
        let sorted = norms.map(\.norm).sorted()
        let n = sorted.count
        let median = n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2
        guard let top = norms.max(by: { $0.norm < $1.norm }), median > 0 else { return nil }
        let ratio = top.norm / median
        guard ratio > threshold else { return nil }
        return OutlierNote(round: round, clientID: top.client, norm: top.norm, ratio: ratio)
    }
}
