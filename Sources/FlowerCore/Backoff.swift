import FlowerBase
/// When a client retries its connection: exponential backoff with jitter, capped, seeded
/// (pods start in any order; jitter keeps N clients from knocking in lockstep).
///
/// Attempt k (from 0) waits `min(maxDelay, initialDelay × multiplier^k) × (1 − jitter × u)`
/// with `u` uniform in [0, 1) drawn from a `SplitMix64` seeded with `seed`.
public struct ReconnectBackoff: Sendable, Equatable {
    /// The first delay before jitter.
    public let initialDelay: Duration
    /// Growth factor per attempt (≥ 1).
    public let multiplier: Double
    /// Upper bound of any delay before jitter.
    public let maxDelay: Duration
    /// Fraction of each delay that is randomised, in [0, 1] (0: none).
    public let jitter: Double
    /// Attempts made so far (delays handed out).
    public private(set) var attempts: Int = 0
    private var generator: SplitMix64
    private let seed: UInt64

    /// A policy; out-of-range arguments are clamped (multiplier ≥ 1, jitter in [0, 1], max ≥ initial).
    public init(initialDelay: Duration = .milliseconds(200), multiplier: Double = 2, maxDelay: Duration = .seconds(10),
                jitter: Double = 0.5, seed: UInt64) {
        self.initialDelay = max(initialDelay, .zero)
        self.multiplier = multiplier.isFinite ? max(1, multiplier) : 1
        self.maxDelay = max(maxDelay, self.initialDelay)
        self.jitter = jitter.isFinite ? min(1, max(0, jitter)) : 0
        self.seed = seed
        generator = SplitMix64(seed: seed)
    }

    /// The delay to wait before the next attempt; advances the attempt count.
    public mutating func nextDelay() -> Duration {
        let initial = initialDelay.seconds, cap = maxDelay.seconds
        let base = min(cap, initial * Self.pow(multiplier, attempts))
        attempts += 1
        let u = Double(generator.next() >> 11) * 0x1p-53
        let seconds = base * (1 - jitter * u)
        return .nanoseconds(Int64((seconds * 1e9).rounded()))
    }

    /// Starts over after a successful connection (same seed, same jitter sequence as a fresh policy).
    public mutating func reset() {
        attempts = 0
        generator = SplitMix64(seed: seed)
    }

    /// `x^n` that saturates instead of overflowing to infinity for large `n`.
    private static func pow(_ x: Double, _ n: Int) -> Double {
        var r = 1.0
        for _ in 0 ..< min(n, 1024) {
            r *= x
            if r > 1e12 { return 1e12 }
        }
        return r
    }
}
