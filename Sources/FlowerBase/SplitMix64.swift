// FlowerBase: the few primitives every layer of flwr shares and none owns (the kernels, the FL
// vocabulary and the loaders all take seeded generators and measure durations). No dependencies.

/// SplitMix64 (Steele, Lea & Flood 2014, "Fast splittable pseudorandom number generators"): a
/// small, fast, seedable generator for every random choice flwr makes outside the DP mechanisms
/// (initialisation, shuffling, client sampling, reconnect jitter). Same seed, same sequence.
public struct SplitMix64: RandomNumberGenerator, Sendable, Equatable {
    /// The generator's whole state: the next output is a function of it alone; store it to resume
    /// the sequence exactly.
    public var state: UInt64

    /// A generator whose sequence is fixed by `seed`.
    public init(seed: UInt64) { state = seed }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform double in the open interval (0, 1), from the top 53 bits of the next output.
    public mutating func nextOpenUnit() -> Double {
        (Double(next() >> 11) + 0.5) / Double(1 << 53)
    }

    /// A seed derived from `seed` and `stream` (e.g. a round number) so that each round draws
    /// from its own sequence: resuming at round k samples exactly as an uninterrupted run would.
    public static func derive(seed: UInt64, stream: UInt64) -> UInt64 {
        var g = SplitMix64(seed: seed ^ (stream &* 0xD1B5_4A32_D192_ED03))
        return g.next()
    }
}
