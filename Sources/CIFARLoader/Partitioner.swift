// Partitioner: splits a dataset's sample indices among clients, deterministically from
// (labels, numPartitions, scheme, seed), so every client computes the same split on its own and
// partition N is just an index.
//
// IID: one seeded shuffle, then consecutive near-equal chunks.
// Dirichlet (LDA) non-IID: for each class k in ascending order, draw proportions
//   p_k ~ Dir(α, …, α) over the partitions and cut the class's samples (in index order) at the
//   cumulative proportions; re-draw everything until every partition holds at least
//   `minPartitionSize` samples. The label-skew model of Hsu, Qi & Brown 2019 ("Measuring the Effects of
//   Non-Identical Data Distribution for Federated Visual Classification", arXiv:1909.06335),
//   with the per-class assignment and re-draw loop of Yurochkin et al. 2019 ("Bayesian
//   Nonparametric Federated Learning of Neural Networks", ICML), as in Flower Datasets'
//   DirichletPartitioner (self_balancing off, its default). The draws come from NumpyGenerator,
//   numpy's default_rng(seed) reproduced bit for bit, so a seed gives exactly the partitions
//   (same members) Flower Datasets gives for that seed: results compare with Flower's on the
//   same client data. Small α (0.1) gives a few classes per client; large α (1000) nearly IID.
// IID with lognormal sizes: the same seeded shuffle, cut into chunks whose sizes are drawn
//   lognormal (the unequal amounts of data real devices hold): weights w_i = exp(σ·z_i), z_i
//   standard normal from the seed, and sizes 1 + the remaining n − N examples shared in proportion
//   to w_i (largest remainders), so every client holds at least one example and every example is
//   used once. For n ≫ N, log sizes are ~ N(log(n/N) − σ²/2, σ²).

import Foundation

/// How `partition(labels:numPartitions:scheme:seed:)` splits the samples.
public enum Partitioner: Sendable, Equatable {
    /// Shuffled equal split (sizes differ by at most one).
    case iid
    /// Label skew: per class, proportions over partitions drawn from Dir(α); re-drawn until every
    /// partition has at least `minPartitionSize` samples.
    case dirichlet(alpha: Double, minPartitionSize: Int = 10)
    /// IID membership (the same shuffle as `.iid`), sizes drawn lognormal with log-scale σ.
    case lognormal(sigma: Double)

    /// `.iid` for `.equal` sizes, else `.lognormal(sigma:)`.
    public static func iid(sizes: PartitionSizes) -> Partitioner {
        switch sizes {
        case .equal: return .iid
        case .lognormal(let sigma): return .lognormal(sigma: sigma)
        }
    }
}

/// How large IID partitions are: `equal` (sizes differ by at most one) or `lognormal:σ`.
public enum PartitionSizes: Sendable, Equatable, CustomStringConvertible {
    case equal
    /// Sizes ~ lognormal with log-scale standard deviation σ (0 equal, 1 a typical device spread, 2 heavy-tailed).
    case lognormal(sigma: Double)

    /// Parses `equal` or `lognormal:σ` (σ ≥ 0).
    public init(parsing text: String) throws {
        let t = text.trimmingCharacters(in: .whitespaces).lowercased()
        if t == "equal" { self = .equal; return }
        if t.hasPrefix("lognormal:"), let sigma = Double(t.dropFirst("lognormal:".count)), sigma >= 0, sigma.isFinite {
            self = .lognormal(sigma: sigma); return
        }
        throw LoaderError.invalidPartitioning("--partition-sizes is '\(text)'; use equal or lognormal:σ with σ ≥ 0 (e.g. lognormal:1)")
    }

    public var description: String {
        switch self {
        case .equal: return "equal"
        case .lognormal(let sigma): return "lognormal:\(sigma)"
        }
    }
}

/// Sizes of `count` partitions of `total` examples, lognormal with log-scale `sigma`, from `seed`:
/// every size at least 1, summing to `total` (this file's header). Throws when `count > total`.
public func lognormalSizes(total: Int, count: Int, sigma: Double, seed: UInt64) throws -> [Int] {
    guard count >= 1 else {
        throw LoaderError.invalidPartitioning("--num-partitions is \(count); it must be at least 1")
    }
    guard count <= total else {
        throw LoaderError.invalidPartitioning("--partition-sizes lognormal:\(sigma) gives every client at least one of the \(total) samples, so at most \(total) partitions; got \(count): use \(total) or fewer")
    }
    guard sigma >= 0, sigma.isFinite else {
        throw LoaderError.invalidPartitioning("--partition-sizes lognormal:\(sigma): σ must be a finite number ≥ 0")
    }
    var rng = SeededGenerator(seed: seed, stream: 0x53_495A_45)  // "SIZE"
    // Weights relative to the largest draw, so exp cannot overflow whatever σ.
    let z = (0 ..< count).map { _ in sigma * rng.nextNormal() }
    let top = z.max() ?? 0
    let weights = z.map { exp($0 - top) }
    let sum = weights.reduce(0, +)
    let extra = total - count
    var sizes = [Int](repeating: 1, count: count)
    var remainders = [(fraction: Double, index: Int)]()
    remainders.reserveCapacity(count)
    var given = 0
    for i in 0 ..< count {
        let quota = Double(extra) * weights[i] / sum
        let whole = min(extra - given, Int(quota.rounded(.down)))
        sizes[i] += whole
        given += whole
        remainders.append((quota - Double(whole), i))
    }
    // Largest remainders first (ties: lower index), one example each, until all are placed.
    remainders.sort { $0.fraction != $1.fraction ? $0.fraction > $1.fraction : $0.index < $1.index }
    var k = 0
    while given < extra {
        sizes[remainders[k % count].index] += 1
        given += 1; k += 1
    }
    return sizes
}

/// Re-draws the Dirichlet partitioner attempts before giving up with a clear error.
public let dirichletMaxTries = 100

/// Sample indices for each of `numPartitions` partitions (each sorted ascending); every index in
/// 0..<labels.count appears in exactly one partition. Same arguments, same result, anywhere.
public func partition(labels: [Int32], numPartitions: Int, scheme: Partitioner, seed: UInt64) throws -> [[Int]] {
    guard numPartitions >= 1 else {
        throw LoaderError.invalidPartitioning("--num-partitions is \(numPartitions); it must be at least 1")
    }
    guard numPartitions <= labels.count else {
        if case .lognormal(let sigma) = scheme {
            _ = try lognormalSizes(total: labels.count, count: numPartitions, sigma: sigma, seed: seed)
        }
        throw LoaderError.invalidPartitioning("--num-partitions \(numPartitions) exceeds the \(labels.count) samples; use fewer partitions")
    }
    switch scheme {
    case .iid, .lognormal:
        var sizes: [Int]
        if case .lognormal(let sigma) = scheme {
            sizes = try lognormalSizes(total: labels.count, count: numPartitions, sigma: sigma, seed: seed)
        } else {
            let base = labels.count / numPartitions, extra = labels.count % numPartitions
            sizes = (0 ..< numPartitions).map { base + ($0 < extra ? 1 : 0) }
        }
        var rng = SeededGenerator(seed: seed, stream: 0x5041_5254)  // "PART"
        var order = Array(0 ..< labels.count)
        rng.shuffle(&order)
        var result: [[Int]] = []
        result.reserveCapacity(numPartitions)
        var start = 0
        for size in sizes {
            result.append(order[start ..< start + size].sorted())
            start += size
        }
        return result
    case .dirichlet(let alpha, let minSize):
        guard alpha > 0, alpha.isFinite else {
            throw LoaderError.invalidPartitioning("--alpha is \(alpha); the Dirichlet concentration must be a positive number (0.1 very skewed, 1000 nearly IID)")
        }
        guard minSize >= 0, minSize * numPartitions <= labels.count else {
            throw LoaderError.invalidPartitioning("--min-partition-size \(minSize) × \(numPartitions) partitions exceeds the \(labels.count) samples; lower one of them")
        }
        var rng = NumpyGenerator(seed: seed)
        return try dirichletPartition(labels: labels, numPartitions: numPartitions, alpha: alpha,
                                      minSize: minSize, rng: &rng)
    }
}

/// The Dirichlet/LDA scheme described in this file's header.
func dirichletPartition(labels: [Int32], numPartitions: Int, alpha: Double, minSize: Int,
                        rng: inout NumpyGenerator) throws -> [[Int]] {
    var byClass: [Int32: [Int]] = [:]
    for (i, l) in labels.enumerated() { byClass[l, default: []].append(i) }
    let classes = byClass.keys.sorted()
    var smallest = 0
    for _ in 0 ..< dirichletMaxTries {
        var parts = [[Int]](repeating: [], count: numPartitions)
        for k in classes {
            let members = byClass[k] ?? []
            let proportions = rng.dirichlet([Double](repeating: alpha, count: numPartitions))
            // Cut points: floor(cumsum(p) · n_k), as numpy's (cumsum(p) * n).astype(int)[:-1].
            // (A non-finite cut, possible only if every gamma draw underflowed, cuts nothing.)
            var cumulative = 0.0, start = 0
            for p in 0 ..< numPartitions {
                cumulative += proportions[p]
                let cut = cumulative * Double(members.count)
                let end = p == numPartitions - 1 ? members.count : (cut.isFinite ? min(members.count, max(0, Int(cut))) : start)
                if end > start { parts[p] += members[start ..< end] }
                start = max(start, end)
            }
        }
        smallest = parts.map(\.count).min() ?? 0
        if smallest >= minSize { return parts.map { $0.sorted() } }
    }
    throw LoaderError.partitionTooSmall(tries: dirichletMaxTries, smallest: smallest, minPartitionSize: minSize,
                                        numPartitions: numPartitions, alpha: alpha)
}

/// Per-partition label counts: `result[p][k]` samples of class k in partition p.
public func labelHistogram(labels: [Int32], partitions: [[Int]], classes: Int) -> [[Int]] {
    partitions.map { indices in
        var counts = [Int](repeating: 0, count: classes)
        for i in indices where Int(labels[i]) < classes && labels[i] >= 0 { counts[Int(labels[i])] += 1 }
        return counts
    }
}
