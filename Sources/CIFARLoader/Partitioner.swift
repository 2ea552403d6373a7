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
        switch scheme {
        case .lognormal(let sigma):
            _ = try lognormalSizes(total: labels.count, count: numPartitions, sigma: sigma, seed: seed)
            throw LoaderError.invalidPartitioning("--num-partitions \(numPartitions) exceeds the \(labels.count) samples; use \(labels.count) or fewer")
        case .iid:
            throw LoaderError.invalidPartitioning("--num-partitions \(numPartitions) exceeds the \(labels.count) samples: an IID split gives every partition at least one sample, so \(labels.count) partitions is the most that works (flwr simulate --transport virtual --alpha 0 goes beyond by sharing examples between clients)")
        case .dirichlet(let alpha, let minSize):
            throw LoaderError.invalidPartitioning("--num-partitions \(numPartitions) exceeds the \(labels.count) samples; \(dirichletLimitText(labels: labels, alpha: alpha, minSize: minSize))")
        }
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
            throw LoaderError.invalidPartitioning("--min-partition-size \(minSize) × \(numPartitions) partitions exceeds the \(labels.count) samples; \(dirichletLimitText(labels: labels, alpha: alpha, minSize: minSize))")
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
                                        numPartitions: numPartitions, alpha: alpha,
                                        largest: dirichletPartitionLimit(labels: labels, alpha: alpha, minPartitionSize: minSize),
                                        samples: labels.count, classes: classes.count)
}

// The most partitions a Dirichlet split can make. Partition p gets the share G_pk / Σ_q G_qk of
// class k (G ~ Gamma(α), Σ_q G_qk ≈ Nα for N partitions): x_k = n_k G_pk / (Nα) samples, which
// the cut at floor(cumulative share) rounds to floor(x_k) or floor(x_k) + 1 (the latter with
// probability frac(x_k), the previous cut's fraction being about uniform). So P(class k gives j
// samples) = E[max(0, 1 − |x_k − j|)], in closed form through the regularized incomplete gamma
// function (x·Gamma(α) density = αλ·Gamma(α+1) density, λ = n_k/(Nα)); the classes are
// independent, so the chance q(N) that a partition holds fewer than m samples is a short
// convolution. A draw holds E(N) = N·q(N) such partitions on average and meets the minimum with
// probability about exp(−E); E ≤ 3 makes that ≥ 5% per draw, so the 100 draws succeed with
// probability ≥ 99%. The limit is the largest N with E(N) ≤ 3 (and N·m ≤ n). Checked against
// the partitioner on CIFAR-10- and CSV-sized label sets: it succeeds at the limit and fails at
// twice it (PartitionScaleReleaseTests).

/// The regularized lower incomplete gamma function P(a, x) = γ(a, x) / Γ(a), a > 0: its series
/// below x = a + 1, the continued fraction of Q = 1 − P above (Numerical Recipes §6.2).
func regularizedGammaP(_ a: Double, _ x: Double) -> Double {
    guard x > 0 else { return 0 }
    let logPrefix = -x + a * log(x) - lgamma(a)
    if x < a + 1 {
        var term = 1 / a, sum = term, ap = a
        for _ in 0 ..< 100_000 {
            ap += 1; term *= x / ap; sum += term
            if abs(term) < abs(sum) * 1e-15 { break }
        }
        return min(1, sum * exp(logPrefix))
    }
    let tiny = 1e-300
    var b = x + 1 - a, c = 1 / tiny, d = 1 / b, h = d
    for i in 1 ..< 100_000 {
        let an = -Double(i) * (Double(i) - a)
        b += 2
        d = an * d + b; if abs(d) < tiny { d = tiny }
        c = b + an / c; if abs(c) < tiny { c = tiny }
        d = 1 / d
        let delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-15 { break }
    }
    return max(0, 1 - exp(logPrefix) * h)
}

/// The chance that one of `partitions` Dirichlet(α) partitions of classes with `classCounts`
/// samples holds fewer than `minSize` (the model in the comment above).
func dirichletShortProbability(classCounts: [Int], partitions: Int, alpha: Double, minSize m: Int) -> Double {
    guard m > 0 else { return 0 }
    var total = [Double](repeating: 0, count: m)
    total[0] = 1
    for count in classCounts where count > 0 {
        let lambda = Double(count) / (Double(partitions) * alpha)
        func cdf(_ x: Double) -> Double { x > 0 ? regularizedGammaP(alpha, x / lambda) : 0 }
        func cdf1(_ x: Double) -> Double { x > 0 ? regularizedGammaP(alpha + 1, x / lambda) : 0 }
        var perClass = [Double](repeating: 0, count: m)
        for j in 0 ..< m {
            let jd = Double(j)
            // ∫ over [j, j+1] of (j + 1 − x) f(x) dx, then over [j−1, j] of (x − j + 1) f(x) dx.
            var p = (jd + 1) * (cdf(jd + 1) - cdf(jd)) - alpha * lambda * (cdf1(jd + 1) - cdf1(jd))
            if j > 0 { p += alpha * lambda * (cdf1(jd) - cdf1(jd - 1)) - (jd - 1) * (cdf(jd) - cdf(jd - 1)) }
            perClass[j] = max(0, p)
        }
        var next = [Double](repeating: 0, count: m)
        for a in 0 ..< m where total[a] > 0 {
            for b in 0 ..< m - a { next[a + b] += total[a] * perClass[b] }
        }
        total = next
    }
    return min(1, total.reduce(0, +))
}

/// The most partitions a Dirichlet(α) split of `labels` makes with every partition holding at
/// least `minPartitionSize` samples in its 100 draws (with probability ≥ 99%; the estimate in the
/// comment above). Never more than the samples divided by the minimum (by 1 when it is 0).
public func dirichletPartitionLimit(labels: [Int32], alpha: Double, minPartitionSize: Int) -> Int {
    let n = labels.count
    let cap = n / max(1, minPartitionSize)
    guard minPartitionSize > 0, alpha > 0, alpha.isFinite, n > 0 else { return cap }
    var counts: [Int32: Int] = [:]
    for label in labels { counts[label, default: 0] += 1 }
    let classCounts = counts.keys.sorted().map { counts[$0]! }
    func expectedShort(_ partitions: Int) -> Double {
        Double(partitions) * dirichletShortProbability(classCounts: classCounts, partitions: partitions,
                                                       alpha: alpha, minSize: minPartitionSize)
    }
    if expectedShort(cap) <= 3 { return cap }
    var lo = 0, hi = cap   // expectedShort(lo) ≤ 3 < expectedShort(hi)
    while hi - lo > 1 {
        let mid = (lo + hi) / 2
        if expectedShort(mid) <= 3 { lo = mid } else { hi = mid }
    }
    return lo
}

/// What a Dirichlet split of `labels` with `alpha` and `minSize` allows, for an error message.
func dirichletLimitText(labels: [Int32], alpha: Double, minSize: Int) -> String {
    let limit = dirichletPartitionLimit(labels: labels, alpha: alpha, minPartitionSize: minSize)
    var text = "a Dirichlet split with α \(alpha) and at least \(minSize) samples per partition works up to about \(limit) partitions"
    if minSize > 1 {
        text += " (--min-partition-size 1: about \(dirichletPartitionLimit(labels: labels, alpha: alpha, minPartitionSize: 1)))"
    }
    return text + "; use that many or fewer, or raise --alpha"
}

/// Per-partition label counts: `result[p][k]` samples of class k in partition p.
public func labelHistogram(labels: [Int32], partitions: [[Int]], classes: Int) -> [[Int]] {
    partitions.map { indices in
        var counts = [Int](repeating: 0, count: classes)
        for i in indices where Int(labels[i]) < classes && labels[i] >= 0 { counts[Int(labels[i])] += 1 }
        return counts
    }
}
