// A running RDP account over the rounds of a federation.

/// Accumulates the RDP of successive subsampled Gaussian releases (RDP composes by addition,
/// order by order) and converts the total to (ε, δ). A round of DP-FedAvg is one release:
/// the clipped, noised sum of the sampled clients' updates.
///
/// Sampling assumption: each round includes every client independently with probability q
/// (Poisson sampling), and neighbouring federations differ by adding or removing one client's
/// whole data (user-level, add/remove relation), as in McMahan et al. 2018 and dp-accounting's
/// `PoissonSampledDpEvent`. `DPFedAvg` samples this way; a fixed-size sample without
/// replacement is not covered by this bound.
public struct RDPAccountant: Sendable, Equatable {
    /// The Rényi orders tracked.
    public let orders: [Double]
    /// Total RDP at each order so far.
    public private(set) var rdp: [Double]
    /// Number of releases composed so far.
    public private(set) var steps: Int = 0
    /// The series fractional orders use (dp-accounting's unless given).
    public let series: RDPSeries

    /// An empty account over `orders` (dp-accounting's default orders unless given).
    public init(orders: [Double] = defaultRDPOrders, series: RDPSeries = .dpAccounting) {
        self.orders = orders
        self.series = series
        self.rdp = Array(repeating: 0, count: orders.count)
    }

    /// RDP of `count` releases with noise multiplier `z` on a Poisson sample of rate `q`.
    public func rdpOf(samplingRate q: Double, noiseMultiplier z: Double, count: Int = 1) throws(PrivacyError) -> [Double] {
        guard count >= 0 else { throw .invalidRounds(count) }
        let one = try rdpPoissonSubsampledGaussian(samplingRate: q, noiseMultiplier: z, orders: orders, series: series)
        return one.map { count == 0 ? 0 : $0 * Double(count) }
    }

    /// Adds `count` releases with noise multiplier `z` on a Poisson sample of rate `q`.
    public mutating func compose(samplingRate q: Double, noiseMultiplier z: Double, count: Int = 1) throws(PrivacyError) {
        let step = try rdpOf(samplingRate: q, noiseMultiplier: z, count: count)
        for i in rdp.indices { rdp[i] += step[i] }
        steps += count
    }

    /// The (ε, δ) guarantee of everything composed so far.
    public func epsilon(delta: Double) throws(PrivacyError) -> (epsilon: Double, order: Double) {
        try epsilonFromRDP(orders: orders, rdp: rdp, delta: delta)
    }

    /// ε after composing one more release (q, z) — what the next round would cost — without
    /// changing the account.
    public func epsilonAfter(samplingRate q: Double, noiseMultiplier z: Double, delta: Double) throws(PrivacyError) -> (epsilon: Double, order: Double) {
        var copy = self
        try copy.compose(samplingRate: q, noiseMultiplier: z)
        return try copy.epsilon(delta: delta)
    }
}

/// ε of `rounds` releases with noise multiplier `z` at Poisson sampling rate `q`, at `delta`.
public func computeEpsilon(noiseMultiplier z: Double, samplingRate q: Double, rounds: Int, delta: Double,
                           orders: [Double] = defaultRDPOrders, series: RDPSeries = .dpAccounting) throws(PrivacyError) -> (epsilon: Double, order: Double) {
    var account = RDPAccountant(orders: orders, series: series)
    try account.compose(samplingRate: q, noiseMultiplier: z, count: rounds)
    return try account.epsilon(delta: delta)
}

/// The smallest noise multiplier (to relative precision `tolerance`) whose `rounds` releases at
/// sampling rate `q` cost at most `targetEpsilon` at `delta`; like Opacus's
/// `get_noise_multiplier` but bisected to a relative precision instead of an ε tolerance, so
/// the returned z always meets the target.
public func solveNoiseMultiplier(targetEpsilon: Double, samplingRate q: Double, rounds: Int, delta: Double,
                                 orders: [Double] = defaultRDPOrders, series: RDPSeries = .dpAccounting,
                                 tolerance: Double = 1e-6, maximum: Double = 1e4) throws(PrivacyError) -> Double {
    guard targetEpsilon.isFinite, targetEpsilon > 0 else { throw .invalidEpsilon(targetEpsilon) }
    func eps(_ z: Double) throws(PrivacyError) -> Double {
        try computeEpsilon(noiseMultiplier: z, samplingRate: q, rounds: rounds, delta: delta, orders: orders, series: series).epsilon
    }
    if try eps(0) <= targetEpsilon { return 0 }   // q = 0 or no rounds: nothing to hide
    var hi = 1.0
    while try eps(hi) > targetEpsilon {
        hi *= 2
        if hi > maximum { throw .targetUnreachable(epsilon: targetEpsilon, maximum: maximum) }
    }
    var lo = hi >= 2 ? hi / 2 : 0
    while hi - lo > tolerance * hi {
        let mid = (lo + hi) / 2
        if try eps(mid) > targetEpsilon { lo = mid } else { hi = mid }
    }
    return hi
}
