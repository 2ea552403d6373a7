// Order-statistic aggregation rules as pure functions over the round's buffered updates
// (Flower's flwr/server/strategy/aggregate.py: aggregate_median, aggregate_trimmed_avg,
// aggregate_krum, aggregate_bulyan, _aggregate_n_closest_weights). Each update is one flat
// float buffer (all tensors back to back, the same layout for all); weights (numExamples) are
// ignored except by Multi-Krum's final average, as in Flower. Arithmetic in Double.

/// Why an order-statistic rule cannot run on this round's updates.
public struct RobustAggregationError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What is wrong and what to change.
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}

/// Coordinate-wise median (numpy's `median`: the mean of the two middle values for an even count).
public func coordinateMedian(_ updates: [[Float]]) -> [Float] {
    coordinateWise(updates) { column in
        column.sort()
        let n = column.count
        return n % 2 == 1 ? column[n / 2] : (column[n / 2 - 1] + column[n / 2]) / 2
    }
}

/// Coordinate-wise trimmed mean (scipy's `trim_mean`, as Flower's `_trim_mean`): per coordinate,
/// drop the ⌊β·n⌋ smallest and ⌊β·n⌋ largest values and average the rest.
public func coordinateTrimmedMean(_ updates: [[Float]], beta: Double) throws(RobustAggregationError) -> [Float] {
    let n = updates.count
    let cut = Int(beta * Double(n))
    guard n - 2 * cut >= 1 else {
        throw RobustAggregationError("--beta \(beta) trims \(cut) of \(n) updates from each end, leaving none; lower --beta below 0.5")
    }
    return coordinateWise(updates) { column in
        column.sort()
        var s = 0.0
        for k in cut ..< n - cut { s += column[k] }
        return s / Double(n - 2 * cut)
    }
}

/// Applies `reduce` to each coordinate's column of values (one per update).
func coordinateWise(_ updates: [[Float]], _ reduce: (inout [Double]) -> Double) -> [Float] {
    guard let d = updates.first?.count else { return [] }
    var column = [Double](repeating: 0, count: updates.count)
    var out = [Float](repeating: 0, count: d)
    for i in 0 ..< d {
        for (k, u) in updates.enumerated() { column[k] = Double(u[i]) }
        out[i] = Float(reduce(&column))
    }
    return out
}

/// Squared Euclidean distances between all pairs of updates (Flower's `_compute_distances`).
public func squaredDistances(_ updates: [[Float]]) -> [[Double]] {
    let n = updates.count
    var dist = [[Double]](repeating: [Double](repeating: 0, count: n), count: n)
    for i in 0 ..< n {
        for j in i + 1 ..< n {
            var s = 0.0
            updates[i].withUnsafeBufferPointer { a in
                updates[j].withUnsafeBufferPointer { b in
                    for k in 0 ..< a.count {
                        let d = Double(a[k]) - Double(b[k])
                        s += d * d
                    }
                }
            }
            dist[i][j] = s
            dist[j][i] = s
        }
    }
    return dist
}

/// Krum scores (Blanchard, El Mhamdi, Guerraoui & Stainer, "Machine Learning with Adversaries:
/// Byzantine Tolerant Gradient Descent", NeurIPS 2017): for each candidate i among `indices`, the
/// sum of its squared distances to its `max(1, n − f − 2)` nearest other candidates (Flower's
/// `aggregate_krum`; Flower skips the first entry of the sorted row, the candidate itself).
public func krumScores(distances: [[Double]], indices: [Int], numMalicious f: Int) -> [Double] {
    let n = indices.count
    let closest = max(1, n - f - 2)
    return indices.map { i in
        let others = indices.filter { $0 != i }.map { distances[i][$0] }.sorted()
        return others.prefix(closest).reduce(0, +)
    }
}

/// Position (in `indices`) of the Krum choice: the lowest score, the first on ties (numpy's argmin).
public func krumSelect(distances: [[Double]], indices: [Int], numMalicious f: Int) -> Int {
    let scores = krumScores(distances: distances, indices: indices, numMalicious: f)
    var best = 0
    for k in 1 ..< scores.count where scores[k] < scores[best] { best = k }
    return best
}

/// The `keep` updates with the lowest Krum scores (Multi-Krum), best first; ties keep index order.
public func multiKrumSelect(distances: [[Double]], numMalicious f: Int, keep: Int) -> [Int] {
    let indices = Array(distances.indices)
    let scores = krumScores(distances: distances, indices: indices, numMalicious: f)
    return indices.sorted { (scores[$0], $0) < (scores[$1], $1) }.prefix(keep).map { $0 }
}

/// Bulyan (El Mhamdi, Guerraoui & Rouault, "The Hidden Vulnerability of Distributed Learning in
/// Byzantium", ICML 2018), as Flower's `aggregate_bulyan` with Krum as the first rule: needs
/// n ≥ 4f + 3; selects θ = n − 2f updates by repeated Krum (each pick removed from the pool),
/// takes their coordinate-wise median, and returns, per coordinate, the mean of the
/// β = θ − 2f selected values closest to that median.
public func bulyan(_ updates: [[Float]], numMalicious f: Int) throws(RobustAggregationError) -> [Float] {
    let n = updates.count
    guard n >= 4 * f + 3 else {
        throw RobustAggregationError("Bulyan needs at least 4·f + 3 = \(4 * f + 3) updates for --num-malicious-clients \(f), got \(n); lower --num-malicious-clients or sample more clients")
    }
    let theta = n - 2 * f
    let beta = theta - 2 * f
    let distances = squaredDistances(updates)
    var pool = Array(0 ..< n)
    var selected: [[Float]] = []
    for _ in 0 ..< theta {
        let k = krumSelect(distances: distances, indices: pool, numMalicious: f)
        selected.append(updates[pool[k]])
        pool.remove(at: k)
    }
    let median = coordinateMedian(selected)
    return nClosestMean(reference: median, selected, count: beta)
}

/// Per coordinate, the mean of the `count` values closest (in absolute difference) to the
/// reference's value (Flower's `_aggregate_n_closest_weights`); ties keep update order.
public func nClosestMean(reference: [Float], _ updates: [[Float]], count: Int) -> [Float] {
    var column = [(distance: Double, value: Double, index: Int)](repeating: (0, 0, 0), count: updates.count)
    var out = [Float](repeating: 0, count: reference.count)
    for i in 0 ..< reference.count {
        let r = Double(reference[i])
        for (k, u) in updates.enumerated() { column[k] = (abs(Double(u[i]) - r), Double(u[i]), k) }
        column.sort { ($0.distance, $0.index) < ($1.distance, $1.index) }
        var s = 0.0
        for k in 0 ..< count { s += column[k].value }
        out[i] = Float(s / Double(count))
    }
    return out
}
