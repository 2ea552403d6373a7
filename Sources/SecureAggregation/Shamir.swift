// Shamir secret sharing over GF(2^61 − 1), the threshold scheme both SecAgg papers use for the
// self-mask seed and the mask secret key (Bonawitz et al., CCS 2017, §4; Bell et al., CCS 2020, §3).

/// Arithmetic modulo the Mersenne prime p = 2^61 − 1: reduction is a mask, a shift and an add,
/// and a product of two elements fits `multipliedFullWidth`. Elements are `UInt64` in [0, p).
enum Field61 {
    static let p: UInt64 = (1 << 61) - 1

    static func add(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let s = a &+ b  // both < 2^61: no overflow
        return s >= p ? s &- p : s
    }

    static func sub(_ a: UInt64, _ b: UInt64) -> UInt64 {
        a >= b ? a &- b : a &+ (p &- b)
    }

    static func mul(_ a: UInt64, _ b: UInt64) -> UInt64 {
        // a·b < 2^122 = hi·2^64 + lo; 2^61 ≡ 1 (mod p), so x ≡ (x mod 2^61) + (x >> 61).
        let (hi, lo) = a.multipliedFullWidth(by: b)
        let r = (lo & p) &+ ((lo >> 61) | (hi << 3))  // < 2^62
        return reduce(r)
    }

    /// Reduces any value below 2^62 into [0, p).
    static func reduce(_ x: UInt64) -> UInt64 {
        let r = (x & p) &+ (x >> 61)
        return r >= p ? r &- p : r
    }

    static func power(_ base: UInt64, _ exponent: UInt64) -> UInt64 {
        var result: UInt64 = 1, b = base, e = exponent
        while e > 0 {
            if e & 1 == 1 { result = mul(result, b) }
            b = mul(b, b)
            e >>= 1
        }
        return result
    }

    /// The multiplicative inverse (Fermat: a^(p−2)); `a` must be non-zero.
    static func inverse(_ a: UInt64) -> UInt64 { power(a, p - 2) }
}

/// Splits 32-byte secrets into `t`-of-`m` shares and reconstructs them from any `t`.
///
/// A secret is read as five little-endian 7-byte chunks (35 bytes, the last three zero), each below
/// 2^56 < p, and each chunk is shared with its own random polynomial of degree t − 1. A holder's
/// share is the five polynomial values at its x-coordinate, which is its client index + 1 (never 0,
/// distinct per holder). Reconstruction is Lagrange interpolation at 0 over exactly `t` shares.
public enum Shamir {
    /// Bytes of every secret shared here (an X25519 private key or a self-mask seed).
    public static let secretByteCount = 32
    static let chunkByteCount = 7
    /// Field elements per share: ⌈32 / 7⌉.
    public static let elementsPerShare = 5

    /// The secret's five field elements.
    static func elements(of secret: [UInt8]) -> [UInt64] {
        var out = [UInt64](repeating: 0, count: elementsPerShare)
        for (i, byte) in secret.prefix(secretByteCount).enumerated() {
            out[i / chunkByteCount] |= UInt64(byte) << (8 * UInt64(i % chunkByteCount))
        }
        return out
    }

    /// The 32 bytes back from five elements, or nil when an element is not a valid 7-byte chunk
    /// or the padding past byte 32 is not zero (a wrong or tampered share set).
    static func bytes(of elements: [UInt64]) -> [UInt8]? {
        guard elements.count == elementsPerShare else { return nil }
        var out = [UInt8](repeating: 0, count: elementsPerShare * chunkByteCount)
        for (c, e) in elements.enumerated() {
            guard e < (1 << 56) else { return nil }
            for b in 0..<chunkByteCount { out[c * chunkByteCount + b] = UInt8(truncatingIfNeeded: e >> (8 * UInt64(b))) }
        }
        guard out[secretByteCount...].allSatisfy({ $0 == 0 }) else { return nil }
        return Array(out[..<secretByteCount])
    }

    /// Evaluates the polynomial `coefficients[0] + coefficients[1]·x + …` at `x` (Horner).
    static func evaluate(_ coefficients: [UInt64], at x: UInt64) -> UInt64 {
        var acc: UInt64 = 0
        for c in coefficients.reversed() { acc = Field61.add(Field61.mul(acc, x), c) }
        return acc
    }

    /// Shares of `secret` (32 bytes) for holders at `xs` (each in 1..<p, distinct), any `threshold`
    /// of which reconstruct it. Coefficients come from `rng`, which must be cryptographically secure
    /// outside tests (the callers pass `SystemRandomNumberGenerator`).
    static func split(secret: [UInt8], threshold: Int, xs: [UInt64],
                      using rng: inout some RandomNumberGenerator) -> [[UInt64]] {
        let polynomials = elements(of: secret).map { constant in
            [constant] + (1..<max(threshold, 1)).map { _ in UInt64.random(in: 0..<Field61.p, using: &rng) }
        }
        return xs.map { x in polynomials.map { evaluate($0, at: x) } }
    }

    /// The Lagrange weights at 0 for the points `xs` (distinct, non-zero): λ_i = Π_{j≠i} x_j / (x_j − x_i).
    /// One inversion per point: numerator and denominator are accumulated separately.
    static func lagrangeWeightsAtZero(_ xs: [UInt64]) -> [UInt64] {
        xs.indices.map { i in
            var num: UInt64 = 1, den: UInt64 = 1
            for j in xs.indices where j != i {
                num = Field61.mul(num, xs[j])
                den = Field61.mul(den, Field61.sub(xs[j], xs[i]))
            }
            return Field61.mul(num, Field61.inverse(den))
        }
    }

    /// Interpolates each element at 0 from the shares `ys[i]` held at `xs[i]`. The caller passes
    /// exactly the threshold number of shares with distinct, non-zero `xs` and elements below p.
    static func reconstructElements(xs: [UInt64], ys: [[UInt64]]) -> [UInt64] {
        let weights = lagrangeWeightsAtZero(xs)
        return (0..<elementsPerShare).map { e in
            var acc: UInt64 = 0
            for (i, w) in weights.enumerated() { acc = Field61.add(acc, Field61.mul(w, ys[i][e])) }
            return acc
        }
    }

    /// Whether the share `(x, y)` lies on the polynomials through the shares at `xs` (degree
    /// `xs.count − 1`): a share beyond the threshold that checks the others. λ_i(x) = Π_{j≠i} (x − x_j)/(x_i − x_j).
    static func isConsistent(xs: [UInt64], ys: [[UInt64]], x: UInt64, y: [UInt64]) -> Bool {
        let weights = xs.indices.map { i in
            var num: UInt64 = 1, den: UInt64 = 1
            for j in xs.indices where j != i {
                num = Field61.mul(num, Field61.sub(x, xs[j]))
                den = Field61.mul(den, Field61.sub(xs[i], xs[j]))
            }
            return Field61.mul(num, Field61.inverse(den))
        }
        return (0..<elementsPerShare).allSatisfy { e in
            var acc: UInt64 = 0
            for (i, w) in weights.enumerated() { acc = Field61.add(acc, Field61.mul(w, ys[i][e])) }
            return acc == y[e]
        }
    }

    /// The 32-byte secret from `threshold` shares, or nil when they do not decode to one.
    static func reconstruct(xs: [UInt64], ys: [[UInt64]]) -> [UInt8]? {
        bytes(of: reconstructElements(xs: xs, ys: ys))
    }
}
