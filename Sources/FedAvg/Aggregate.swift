import FlowerCore

// The averaging maths of FedAvg as pure functions and values (in the spirit of Flower's
// flwr/server/strategy/aggregate.py): the strategy only composes them.

/// Why one client update cannot enter the average.
public enum UpdateRejection: Error, Sendable, Equatable, CustomStringConvertible {
    /// NaN or ±Inf at flat index `index`, inside tensor `tensor`.
    case nonFinite(tensor: String, index: Int)
    /// Names or shapes differ from the global model.
    case layoutMismatch(String)
    /// The weight (`numExamples`) is zero or negative.
    case nonPositiveExamples(Int)
    /// Adding this weight would overflow the round's total of examples.
    case examplesOverflow(Int, total: Int)

    public var description: String {
        switch self {
        case .nonFinite(let t, let i):
            return "update has a non-finite value in \(t) (flat index \(i)); the client diverged: lower its --lr"
        case .layoutMismatch(let s):
            return "update layout differs from the global model: \(s); client and server must build the same model"
        case .nonPositiveExamples(let n):
            return "update reports numExamples = \(n); a client must train on at least one example"
        case .examplesOverflow(let n, let total):
            return "update reports numExamples = \(n), which overflows the round's total \(total); bound it with --max-examples"
        }
    }
}

/// A running weighted average of parameter updates: `Σ nᵢ·wᵢ / Σ nᵢ`, folded in one update at
/// a time, so memory is one Double per model value whatever the number of clients.
public struct WeightedAverage: Sendable {
    /// The expected layout (names, shapes, order); the result carries it.
    public let template: Parameters
    private var sum: [Double]
    /// Σ numExamples of the updates added.
    public private(set) var totalExamples: Int = 0
    /// Number of updates added.
    public private(set) var count: Int = 0

    /// An empty average expecting updates laid out like `template` (its values are not used).
    public init(template: Parameters) {
        self.template = template
        sum = [Double](repeating: 0, count: template.count)
    }

    /// Checks one update without adding it: layout, finiteness, positive weight.
    public func validate(_ update: Parameters, numExamples: Int) throws(UpdateRejection) {
        guard numExamples > 0 else { throw .nonPositiveExamples(numExamples) }
        guard !totalExamples.addingReportingOverflow(numExamples).overflow else {
            throw .examplesOverflow(numExamples, total: totalExamples)
        }
        if let mismatch = update.layoutMismatch(against: template) { throw .layoutMismatch(mismatch) }
        if let i = update.firstNonFinite() {
            let name = update.layout.first { i >= $0.offset && i < $0.offset + $0.count }?.name ?? "?"
            throw .nonFinite(tensor: name, index: i)
        }
    }

    /// Validates `update` and adds it with weight `numExamples`; a rejected update changes nothing.
    public mutating func add(_ update: Parameters, numExamples: Int) throws(UpdateRejection) {
        try validate(update, numExamples: numExamples)
        let w = Double(numExamples)
        sum.withUnsafeMutableBufferPointer { acc in
            update.values.withUnsafeBufferPointer { v in
                for i in 0 ..< acc.count { acc[i] += w * Double(v[i]) }
            }
        }
        totalExamples += numExamples
        count += 1
    }

    /// Validates `update` and adds it with weight `numExamples` like `add(_:numExamples:)`, and
    /// returns ‖update − global‖₂ (as `updateNorm` computes it, summed in eight lanes, so equal to
    /// it up to rounding) measured in the same
    /// pass over the update as the weighted add: the server's screening and the aggregation read
    /// each update once instead of twice. Nil (the update still added) when `global` is laid out
    /// differently from the update; a rejected update changes nothing.
    public mutating func add(_ update: Parameters, numExamples: Int,
                             measuringFrom global: Parameters) throws(UpdateRejection) -> Double? {
        try validate(update, numExamples: numExamples)
        let w = Double(numExamples)
        let measured = update.hasSameLayout(as: global)
        var squares = 0.0
        sum.withUnsafeMutableBufferPointer { acc in
            update.values.withUnsafeBufferPointer { v in
                if measured {
                    global.values.withUnsafeBufferPointer { g in
                        // Eight independent partial sums of squares, so the loop is not one
                        // dependent chain of additions (what bounds `updateNorm`'s serial sum).
                        var p = SIMD8<Double>()
                        let n = acc.count
                        var i = 0
                        while i + 8 <= n {
                            var d = SIMD8<Double>()
                            for k in 0 ..< 8 {
                                let x = Double(v[i + k])
                                d[k] = x - Double(g[i + k])
                                acc[i + k] += w * x
                            }
                            p += d * d
                            i += 8
                        }
                        var tail = 0.0
                        while i < n {
                            let x = Double(v[i])
                            let d = x - Double(g[i])
                            tail += d * d
                            acc[i] += w * x
                            i += 1
                        }
                        squares = p.sum() + tail
                    }
                } else {
                    for i in 0 ..< acc.count { acc[i] += w * Double(v[i]) }
                }
            }
        }
        totalExamples += numExamples
        count += 1
        guard measured, squares.isFinite else { return nil }
        return squares.squareRoot()
    }

    /// Adds the weighted average of `clients` clients' models (secure aggregation: only their sum
    /// is known) with weight `numExamples`, their summed weight; it counts as `clients` updates.
    public mutating func add(average: Parameters, numExamples: Int, clients: Int) throws(UpdateRejection) {
        try add(average, numExamples: numExamples)
        count += max(clients, 1) - 1
    }

    /// The weighted average, laid out like `template`; nil before the first update.
    public func average() -> Parameters? {
        guard totalExamples > 0 else { return nil }
        let scale = 1 / Double(totalExamples)
        var out = template
        out.values = [Float](unsafeUninitializedCapacity: sum.count) { buf, n in
            sum.withUnsafeBufferPointer { s in
                for i in 0 ..< s.count { buf[i] = Float(s[i] * scale) }
            }
            n = sum.count
        }
        return out
    }
}

/// Weighted average of a list of updates (Flower's `aggregate`); the first update's layout is
/// the reference. Throws the first rejection, or returns nil for an empty list.
public func aggregate(_ results: [(parameters: Parameters, numExamples: Int)]) throws(UpdateRejection) -> Parameters? {
    guard let first = results.first else { return nil }
    var avg = WeightedAverage(template: first.parameters)
    for r in results { try avg.add(r.parameters, numExamples: r.numExamples) }
    return avg.average()
}

/// Loss averaged with weights `numExamples` (Flower's `weighted_loss_avg`); nil when the weights sum to 0.
/// Weights are summed as Doubles, so no count can overflow; non-positive weights are skipped.
public func weightedLossAvg(_ results: [(numExamples: Int, loss: Double)]) -> Double? {
    var total = 0.0, sum = 0.0
    for r in results where r.numExamples > 0 {
        total += Double(r.numExamples)
        sum += Double(r.numExamples) * r.loss
    }
    guard total > 0 else { return nil }
    return sum / total
}

/// Running weighted averages of numeric metrics; a metric is averaged over the results that report it.
public struct MetricsAverage: Sendable {
    private var sums: [String: (weighted: Double, weight: Double)] = [:]

    /// An empty average.
    public init() {}

    /// Adds one result's numeric metrics with weight `numExamples` (strings and bytes are skipped).
    public mutating func add(_ metrics: Metrics, numExamples: Int) {
        guard numExamples > 0 else { return }
        let w = Double(numExamples)
        for (key, value) in metrics {
            guard let x = value.doubleValue else { continue }
            let s = sums[key] ?? (0, 0)
            sums[key] = (s.weighted + w * x, s.weight + w)
        }
    }

    /// The averages, as doubles.
    public var result: Metrics {
        sums.mapValues { .double($0.weighted / $0.weight) }
    }
}

/// Numeric metrics averaged with weights `numExamples` (the usual `weighted_average` of Flower examples).
public func weightedMetricsAvg(_ results: [(numExamples: Int, metrics: Metrics)]) -> Metrics {
    var avg = MetricsAverage()
    for r in results { avg.add(r.metrics, numExamples: r.numExamples) }
    return avg.result
}
