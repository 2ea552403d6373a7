// Round parameters of SecAgg+: what the server chooses (SecAggConfig) and what it announces to every
// client (SecAggParameters), both validated by the same rules on both sides.

/// Hard limits on every count a peer can announce; checked before any loop or allocation.
public enum SecAggLimits {
    /// Clients in one round (client indices are below this).
    public static let maxClients = 1 << 20
    /// Neighbours per client (k). The complete graph of original SecAgg is limited to this many + 1 clients.
    public static let maxNumShares = 4096
    /// Model values per masked vector (2^28 floats, 1 GiB as UInt32).
    public static let maxVectorLength = 1 << 28
    /// Largest clipping range accepted (values are clipped to [−R, R]).
    public static let maxClippingRange = 1e9
}

/// What the operator asks for; unset fields take defaults computed from the number of clients.
/// Names follow Flower's `SecAggPlusWorkflow` (num_shares, reconstruction_threshold, clipping_range,
/// quantization_range, modulus_range, max_weight).
public struct SecAggConfig: Sendable, Equatable {
    /// k, neighbours of each client on the random graph (shares per secret). nil: 2·⌈log₂ n⌉, the
    /// O(log n) degree of Bell et al.; n − 1 or more gives original SecAgg's complete graph.
    public var numShares: Int?
    /// t, shares needed to reconstruct. nil: ⌊k/2⌋ + 1. Must exceed k/2 (see `SecAggParameters`).
    public var reconstructionThreshold: Int?
    /// R: every update value is clipped to [−R, R] before quantisation.
    public var clippingRange: Double
    /// Q: quantisation levels over [−R, R]. nil: the largest power of two for which n clients at
    /// `maxWeight` cannot overflow the modulus.
    public var quantizationRange: UInt64?
    /// m: the masked sum lives in Z_m; a power of two up to 2^32 (the protocol's Z_{2^32}).
    public var modulusRange: UInt64
    /// Each client's weight is min(example count, maxWeight).
    public var maxWeight: UInt64

    public init(numShares: Int? = nil, reconstructionThreshold: Int? = nil, clippingRange: Double = 8,
                quantizationRange: UInt64? = nil, modulusRange: UInt64 = 1 << 32, maxWeight: UInt64 = 1000) {
        self.numShares = numShares
        self.reconstructionThreshold = reconstructionThreshold
        self.clippingRange = clippingRange
        self.quantizationRange = quantizationRange
        self.modulusRange = modulusRange
        self.maxWeight = maxWeight
    }

    /// The O(log n) default degree: 2·⌈log₂ n⌉, at most n − 1.
    public static func defaultNumShares(numClients n: Int) -> Int {
        guard n > 1 else { return 0 }
        let log2n = Int.bitWidth - (n - 1).leadingZeroBitCount  // ⌈log₂ n⌉
        return min(n - 1, 2 * log2n)
    }

    /// The parameters for a round of `numClients` sampled clients, or the first rule they break.
    public func resolve(numClients n: Int) throws(SecAggError) -> SecAggParameters {
        guard (2...SecAggLimits.maxClients).contains(n) else {
            throw .invalidParameter(name: "number of clients", value: "\(n)",
                                    reason: "secure aggregation needs 2...\(SecAggLimits.maxClients) clients per round")
        }
        let k = min(numShares ?? Self.defaultNumShares(numClients: n), n - 1)
        let t = reconstructionThreshold ?? (k / 2 + 1)
        var q = quantizationRange
        if q == nil {
            // Largest power of two Q with n·maxWeight·(Q − 1) < m.
            let (nw, overflow) = UInt64(n).multipliedReportingOverflow(by: max(maxWeight, 1))
            if !overflow, nw < modulusRange {
                let limit = (modulusRange - 1) / nw + 1  // Q − 1 ≤ (m − 1)/nw
                q = limit >= 2 ? UInt64(1) << (63 - limit.leadingZeroBitCount) : nil
            }
            if q == nil {
                throw .invalidParameter(name: "max_weight", value: "\(maxWeight)",
                                        reason: "\(n) clients at this weight overflow modulus_range \(modulusRange); lower max_weight")
            }
        }
        let p = SecAggParameters(numShares: k, reconstructionThreshold: t, clippingRange: clippingRange,
                                 quantizationRange: q ?? 2, modulusRange: modulusRange, maxWeight: maxWeight)
        try p.validate(numClients: n)
        return p
    }
}

/// The parameters of one round as the server announces them to every client. Clients validate them
/// with the same rules (a server must not be able to weaken the threshold without the client noticing).
public struct SecAggParameters: Sendable, Equatable {
    /// k: neighbours per client (the graph's degree before dropouts).
    public var numShares: Int
    /// t: shares needed to reconstruct a secret; 2t > k.
    public var reconstructionThreshold: Int
    /// R: clipping range.
    public var clippingRange: Double
    /// Q: quantisation levels, values map to 0...Q−1.
    public var quantizationRange: UInt64
    /// m: modulus of the masked sum (a power of two ≤ 2^32).
    public var modulusRange: UInt64
    /// Largest weight a client's update carries.
    public var maxWeight: UInt64

    public init(numShares: Int, reconstructionThreshold: Int, clippingRange: Double,
                quantizationRange: UInt64, modulusRange: UInt64, maxWeight: UInt64) {
        self.numShares = numShares
        self.reconstructionThreshold = reconstructionThreshold
        self.clippingRange = clippingRange
        self.quantizationRange = quantizationRange
        self.modulusRange = modulusRange
        self.maxWeight = maxWeight
    }

    /// Throws the first rule broken for a round of `n` clients.
    ///
    /// - k in 1...min(n − 1, maxNumShares); k even unless k = n − 1 (each client's neighbours are the
    ///   k/2 on either side of it on a shuffled ring, Bell et al.'s Harary graph; n − 1 is the complete graph).
    /// - t in 1...k with 2t > k: a server that asks some holders for a peer's seed share and others for
    ///   its key share can then never gather t of both, since each honest holder answers one kind only.
    /// - R finite in (0, 1e9]; m a power of two in 2...2^32; Q ≥ 2; maxWeight ≥ 1; and
    ///   n·maxWeight·(Q − 1) < m, so the weighted sum never wraps around the modulus.
    public func validate(numClients n: Int) throws(SecAggError) {
        guard (2...SecAggLimits.maxClients).contains(n) else {
            throw .invalidParameter(name: "number of clients", value: "\(n)",
                                    reason: "must be in 2...\(SecAggLimits.maxClients)")
        }
        let kMax = min(n - 1, SecAggLimits.maxNumShares)
        guard (1...kMax).contains(numShares) else {
            throw .invalidParameter(name: "num_shares", value: "\(numShares)", reason: "must be in 1...\(kMax) for \(n) clients")
        }
        guard numShares % 2 == 0 || numShares == n - 1 else {
            throw .invalidParameter(name: "num_shares", value: "\(numShares)",
                                    reason: "must be even (k/2 neighbours on each side of the ring) or n − 1 = \(n - 1) for the complete graph")
        }
        guard (1...numShares).contains(reconstructionThreshold), 2 * reconstructionThreshold > numShares else {
            throw .invalidParameter(name: "reconstruction_threshold", value: "\(reconstructionThreshold)",
                                    reason: "must be in \(numShares / 2 + 1)...\(numShares) (more than half of num_shares \(numShares))")
        }
        guard clippingRange.isFinite, clippingRange > 0, clippingRange <= SecAggLimits.maxClippingRange else {
            throw .invalidParameter(name: "clipping_range", value: "\(clippingRange)", reason: "must be a finite number in (0, 1e9]")
        }
        guard modulusRange >= 2, modulusRange <= 1 << 32, modulusRange & (modulusRange - 1) == 0 else {
            throw .invalidParameter(name: "modulus_range", value: "\(modulusRange)", reason: "must be a power of two in 2...4294967296")
        }
        guard maxWeight >= 1 else {
            throw .invalidParameter(name: "max_weight", value: "\(maxWeight)", reason: "must be at least 1")
        }
        guard quantizationRange >= 2 else {
            throw .invalidParameter(name: "quantization_range", value: "\(quantizationRange)", reason: "must be at least 2")
        }
        let (nw, o1) = UInt64(n).multipliedReportingOverflow(by: maxWeight)
        let (bound, o2) = nw.multipliedReportingOverflow(by: quantizationRange - 1)
        guard !o1, !o2, bound < modulusRange else {
            throw .invalidParameter(name: "quantization_range", value: "\(quantizationRange)",
                                    reason: "\(n) clients × max_weight \(maxWeight) × (quantization_range − 1) must stay below modulus_range \(modulusRange); lower quantization_range or max_weight")
        }
    }

    /// Largest error of one dequantised coordinate of the weighted average against the exact weighted
    /// average of the clipped updates: each client's stochastic rounding moves its value by less than
    /// one level, 2R/(Q − 1), and a weighted average of such errors is below the same bound.
    public var quantizationErrorBound: Double { 2 * clippingRange / Double(quantizationRange - 1) }
}
