// NumpyGenerator: the draws of `numpy.random.default_rng(seed)` reproduced bit for bit, so that
// the Dirichlet partitioner gives, for the same seed, exactly the split Flower Datasets'
// `DirichletPartitioner` gives (it draws from `np.random.default_rng(seed)`). Experiments then
// compare with Flower's on identical client data, and a user moving from Flower keeps their splits.
//
// What numpy does, and so what this file does:
// - `SeedSequence(seed)`: the seed's 32-bit words are hashed into a pool of four words
//   (hashmix/mix with numpy's constants), then `generate_state(4, uint64)` stretches the pool.
// - `PCG64`: 128-bit LCG state and increment from those four words (srandom: state 0, step,
//   add the seed, step); each output steps first, then XSL-RR (xor of the halves, rotated by the
//   top 6 bits).
// - `random()`: the top 53 bits of an output over 2^53.
// - standard exponential and normal: 256-layer ziggurats with numpy's tables (NumpyZiggurat).
// - `standard_gamma(shape)`: shape 1: exponential; shape < 1: the rejection method of Johnk/
//   Ahrens-Dieter with one uniform and one exponential per try; shape > 1: Marsaglia-Tsang.
// - `dirichlet(alpha)`: gammas normalised by multiplying with 1/sum, or, when every α < 0.1,
//   stick-breaking with beta draws (Johnk's algorithm for a, b ≤ 1).
// The math functions (pow, log, log1p, exp) are the C library's, as numpy's C code calls them.
import Foundation

/// numpy's `default_rng(seed)` (SeedSequence + PCG64): same seed, same draws as numpy.
public struct NumpyGenerator: Sendable {
    private var state: UInt128
    private let increment: UInt128
    private static let multiplier = UInt128(2_549_297_995_355_413_924) << 64 | UInt128(4_865_540_595_714_422_341)

    /// The generator `numpy.random.default_rng(seed)` makes.
    public init(seed: UInt64) {
        let words = Self.seedSequenceState(entropy: seed, count: 4)
        // numpy: pcg64_set_seed(seed = words[0..1], inc = words[2..3]); PCG_128BIT_CONSTANT(high, low).
        let initState = UInt128(words[0]) << 64 | UInt128(words[1])
        let initSeq = UInt128(words[2]) << 64 | UInt128(words[3])
        increment = (initSeq << 1) | 1
        state = 0
        state = state &* Self.multiplier &+ increment
        state &+= initState
        state = state &* Self.multiplier &+ increment
    }

    /// `SeedSequence(entropy).generate_state(count, np.uint64)`.
    static func seedSequenceState(entropy: UInt64, count: Int) -> [UInt64] {
        let initA: UInt32 = 0x43B0_D7E5, multA: UInt32 = 0x931E_8875
        let initB: UInt32 = 0x8B51_F9DD, multB: UInt32 = 0x58F3_8DED
        let mixL: UInt32 = 0xCA01_F9DD, mixR: UInt32 = 0x4973_F715
        // The seed as little-endian 32-bit words (numpy drops high zero words; 0 is [0]).
        var words: [UInt32] = [UInt32(truncatingIfNeeded: entropy)]
        if entropy >> 32 != 0 { words.append(UInt32(truncatingIfNeeded: entropy >> 32)) }
        var hashConst = initA
        func hashmix(_ v: UInt32) -> UInt32 {
            var value = v ^ hashConst
            hashConst = hashConst &* multA
            value = value &* hashConst
            return value ^ (value >> 16)
        }
        func mix(_ x: UInt32, _ y: UInt32) -> UInt32 {
            let r = mixL &* x &- mixR &* y
            return r ^ (r >> 16)
        }
        var pool = [UInt32](repeating: 0, count: 4)
        for i in 0 ..< 4 { pool[i] = hashmix(i < words.count ? words[i] : 0) }
        for src in 0 ..< 4 {
            for dst in 0 ..< 4 where src != dst { pool[dst] = mix(pool[dst], hashmix(pool[src])) }
        }
        var h = initB
        var out32: [UInt32] = []
        for i in 0 ..< count * 2 {
            var v = pool[i % 4] ^ h
            h = h &* multB
            v = v &* h
            out32.append(v ^ (v >> 16))
        }
        return (0 ..< count).map { UInt64(out32[2 * $0]) | UInt64(out32[2 * $0 + 1]) << 32 }
    }

    /// The next 64 bits (`bit_generator.random_raw()`).
    public mutating func nextUInt64() -> UInt64 {
        state = state &* Self.multiplier &+ increment
        let x = UInt64(truncatingIfNeeded: state >> 64) ^ UInt64(truncatingIfNeeded: state)
        let rot = UInt64(truncatingIfNeeded: state >> 122)
        return (x >> rot) | (x << ((64 &- rot) & 63))
    }

    /// A uniform double in [0, 1) (`Generator.random()`).
    public mutating func nextDouble() -> Double {
        Double(nextUInt64() >> 11) * (1.0 / 9_007_199_254_740_992.0)
    }

    /// `Generator.standard_exponential()` (ziggurat).
    public mutating func standardExponential() -> Double {
        while true {
            var ri = nextUInt64() >> 3
            let idx = Int(ri & 0xFF)
            ri >>= 8
            let x = Double(ri) * NumpyZiggurat.we[idx]
            if ri < NumpyZiggurat.keDouble[idx] { return x }
            if idx == 0 { return 7.6971174701310497140446280481 - log1p(-nextDouble()) }
            let fe = NumpyZiggurat.fe
            if (fe[idx - 1] - fe[idx]) * nextDouble() + fe[idx] < exp(-x) { return x }
        }
    }

    /// `Generator.standard_normal()` (ziggurat).
    public mutating func standardNormal() -> Double {
        let r0 = 3.6541528853610087963519472518, invR = 0.27366123732975827203338247596
        while true {
            var r = nextUInt64()
            let idx = Int(r & 0xFF)
            r >>= 8
            let negative = r & 1 == 1
            let rabs = (r >> 1) & 0x000F_FFFF_FFFF_FFFF
            var x = Double(rabs) * NumpyZiggurat.wi[idx]
            if negative { x = -x }
            if rabs < NumpyZiggurat.kiDouble[idx] { return x }
            if idx == 0 {
                while true {
                    let xx = -invR * log1p(-nextDouble())
                    let yy = -log1p(-nextDouble())
                    if yy + yy > xx * xx { return (rabs >> 8) & 1 == 1 ? -(r0 + xx) : r0 + xx }
                }
            }
            let fi = NumpyZiggurat.fi
            if (fi[idx - 1] - fi[idx]) * nextDouble() + fi[idx] < exp(-0.5 * x * x) { return x }
        }
    }

    /// `Generator.standard_gamma(shape)`.
    public mutating func standardGamma(shape: Double) -> Double {
        if shape == 1 { return standardExponential() }
        if shape == 0 { return 0 }
        if shape < 1 {
            while true {
                let u = nextDouble(), v = standardExponential()
                if u <= 1 - shape {
                    let x = pow(u, 1 / shape)
                    if x <= v { return x }
                } else {
                    let y = -log((1 - u) / shape)
                    let x = pow(1 - shape + shape * y, 1 / shape)
                    if x <= v + y { return x }
                }
            }
        }
        let b = shape - 1.0 / 3.0, c = 1 / (9 * b).squareRoot()
        while true {
            var x = 0.0, v = 0.0
            repeat {
                x = standardNormal()
                v = 1 + c * x
            } while v <= 0
            v = v * v * v
            let u = nextDouble()
            if u < 1 - 0.0331 * (x * x) * (x * x) { return b * v }
            if log(u) < 0.5 * x * x + b * (1 - v + log(v)) { return b * v }
        }
    }

    /// `Generator.beta(a, b)`.
    public mutating func beta(_ a: Double, _ b: Double) -> Double {
        if a <= 1 && b <= 1 {
            while true {
                let u = nextDouble(), v = nextDouble()
                let x = pow(u, 1 / a), y = pow(v, 1 / b)
                let sum = x + y
                if sum <= 1 && u + v > 0 {
                    if sum > 0 { return x / sum }
                    var logX = log(u) / a, logY = log(v) / b
                    let logM = max(logX, logY)
                    logX -= logM; logY -= logM
                    return exp(logX - log(exp(logX) + exp(logY)))
                }
            }
        }
        let ga = standardGamma(shape: a), gb = standardGamma(shape: b)
        return ga / (ga + gb)
    }

    /// `Generator.dirichlet(alpha)`: one draw, `alpha.count` proportions summing to 1.
    public mutating func dirichlet(_ alpha: [Double]) -> [Double] {
        let k = alpha.count
        guard k > 0 else { return [] }
        if let largest = alpha.max(), largest < 0.1 {
            // Stick-breaking with beta draws; suffix sums of α right to left.
            var suffix = [Double](repeating: 0, count: k)
            var sum = 0.0
            for j in stride(from: k - 1, through: 0, by: -1) { sum += alpha[j]; suffix[j] = sum }
            var out = [Double](repeating: 0, count: k)
            var acc = 1.0
            for j in 0 ..< k - 1 {
                let v = beta(alpha[j], suffix[j + 1])
                out[j] = acc * v
                acc *= 1 - v
            }
            out[k - 1] = acc
            return out
        }
        var out = alpha.map { standardGamma(shape: $0) }
        let inverse = 1 / out.reduce(0, +)
        for j in out.indices { out[j] *= inverse }
        return out
    }
}
