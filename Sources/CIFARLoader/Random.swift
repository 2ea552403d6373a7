// Random: the one seeded generator every random choice in CIFARLoader goes through
// (IID partition shuffles, Laplace noise; the Dirichlet split uses NumpyGenerator to match Flower Datasets), so the same seed gives the same bytes on
// every machine and Swift version (the stdlib's shuffle and random(in:) algorithms may change).
import Foundation

/// xoshiro256** (Blackman & Vigna 2018) seeded through SplitMix64: fast, 256 bits of state,
/// passes BigCrush. Not cryptographic: whoever knows the seed can reproduce every draw.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var s0: UInt64, s1: UInt64, s2: UInt64, s3: UInt64

    /// A generator for `seed`; `stream` selects an independent sequence for the same seed.
    public init(seed: UInt64, stream: UInt64 = 0) {
        var sm = seed ^ (stream &* 0xD1B5_4A32_D192_ED03)
        func splitMix(_ x: inout UInt64) -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s0 = splitMix(&sm); s1 = splitMix(&sm); s2 = splitMix(&sm); s3 = splitMix(&sm)
    }

    /// A generator with this exact state (not all zero).
    init(state: (UInt64, UInt64, UInt64, UInt64)) {
        (s0, s1, s2, s3) = state
    }

    /// The next 64 random bits.
    @inline(__always)
    public mutating func next() -> UInt64 {
        let result = ((s1 &* 5) << 7 | (s1 &* 5) >> 57) &* 9
        let t = s1 << 17
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3
        s2 ^= t
        s3 = s3 << 45 | s3 >> 19
        return result
    }

    /// A uniform double strictly inside (0, 1), from the next 64 bits (see `openUnit(bits:)`).
    @inline(__always)
    public mutating func nextOpenUnit() -> Double { Self.openUnit(bits: next()) }

    /// (k + ½) / 2^52 for the top 52 bits k: every value is exact (k + ½ needs 53 bits), the
    /// extremes are 2^-53 and 1 − 2^-53, so `log(u)` and `log1p(-u)` are always finite. (With 53
    /// bits, k + ½ would round and 1.0 itself could come out.)
    @inline(__always)
    public static func openUnit(bits: UInt64) -> Double {
        (Double(bits >> 12) + 0.5) * 0x1p-52
    }

    /// A uniform integer in 0..<bound (Lemire's unbiased multiply-and-reject).
    public mutating func nextInt(below bound: Int) -> Int {
        precondition(bound > 0, "nextInt(below:) needs a positive bound")
        let b = UInt64(bound)
        var m = next().multipliedFullWidth(by: b)
        if m.low < b {
            let threshold = (0 &- b) % b
            while m.low < threshold { m = next().multipliedFullWidth(by: b) }
        }
        return Int(m.high)
    }

    /// A standard normal draw (Marsaglia's polar method; the second value is discarded so the
    /// generator carries no hidden state besides its 256 bits).
    public mutating func nextNormal() -> Double {
        while true {
            let u = 2 * nextOpenUnit() - 1, v = 2 * nextOpenUnit() - 1
            let s = u * u + v * v
            if s > 0 && s < 1 { return u * (-2 * log(s) / s).squareRoot() }
        }
    }

    /// Fisher–Yates shuffle of `array` in place with this generator.
    public mutating func shuffle<T>(_ array: inout [T]) {
        guard array.count > 1 else { return }
        for i in stride(from: array.count - 1, to: 0, by: -1) {
            array.swapAt(i, nextInt(below: i + 1))
        }
    }
}

extension SeededGenerator {
    /// Sets the raw state (tests check the algorithm against its reference outputs).
    mutating func setStateForTesting(_ a: UInt64, _ b: UInt64, _ c: UInt64, _ d: UInt64) {
        self = SeededGenerator(state: (a, b, c, d))
    }
}
