// The randomness of DP-FedAvg and DP-SGD: who takes part (Poisson sampling) and the Gaussian noise.
import Crypto
import FlowerCore
import Foundation
import Synchronization

/// Where DP-FedAvg's random bits come from.
public enum DPRandomness: Sendable, Equatable {
    /// A cryptographically secure stream seeded by the kernel: AES-256 in counter mode under a key
    /// drawn from the kernel's CSPRNG (getrandom(2)) for each generator (`KeystreamRandom`); every
    /// real run uses this: noise anyone can predict protects nothing.
    case system
    /// SplitMix64 from a seed: reproducible, for tests only (no CLI flag sets it).
    case seeded(UInt64)
}

/// A thread-safe source of DP-FedAvg's and DP-SGD's random draws.
public final class DPRandom: Sendable {
    private enum Source {
        case system(KeystreamRandom)
        case seeded(SplitMix64)

        mutating func next() -> UInt64 {
            switch self {
            case .system(let g):
                return g.next()
            case .seeded(var g):
                let x = g.next()
                self = .seeded(g)
                return x
            }
        }
    }

    private let source: Mutex<Source>

    /// A source drawing from `randomness` (`.system` in every run; `.seeded` in tests only).
    public init(_ randomness: DPRandomness) {
        switch randomness {
        case .system: source = Mutex(.system(KeystreamRandom()))
        case .seeded(let seed): source = Mutex(.seeded(SplitMix64(seed: seed)))
        }
    }

    /// A uniform double in (0, 1] from the top 53 bits of one draw.
    private static func unit(_ bits: UInt64) -> Double {
        (Double(bits >> 11) + 1) * 0x1p-53
    }

    /// Each element of `items` kept independently with probability `q` (Poisson sampling).
    func poissonSample<T>(_ items: [T], rate q: Double) -> [T] {
        let keep: [Bool] = source.withLock { s in items.map { _ in Self.unit(s.next()) <= q } }
        return zip(items, keep).filter(\.1).map(\.0)
    }

    /// `count` independent N(0, std²) draws (Box–Muller, two per pair of uniforms).
    func gaussians(count: Int, std: Double) -> [Double] {
        var out = [Double](repeating: 0, count: count)
        guard std > 0 else { return out }
        source.withLock { s in
            var i = 0
            while i < count {
                let r = (-2 * log(Self.unit(s.next()))).squareRoot() * std
                let theta = 2 * Double.pi * Self.unit(s.next())
                out[i] = r * cos(theta)
                if i + 1 < count { out[i + 1] = r * sin(theta) }
                i += 2
            }
        }
        return out
    }

    /// Indices in 0..<count, each included independently with probability `q`, ascending:
    /// Poisson sampling by geometric gaps (the gap before the next included index is
    /// ⌊log U / log(1 − q)⌋, the number of failures before a success), the same distribution as
    /// `count` coin flips at about q·count draws instead of `count` (DP-SGD draws 60,000 flips
    /// per step on Fashion-MNIST otherwise).
    public func poissonSampleIndices(count: Int, rate q: Double) -> [Int] {
        guard count > 0, q > 0 else { return [] }
        if q >= 1 { return Array(0..<count) }
        let logMiss = log1p(-q)
        var out: [Int] = []
        out.reserveCapacity(Int(min(Double(count), q * Double(count) * 1.2 + 16)))
        source.withLock { s in
            var i = -1
            while true {
                let gap = (log(Self.unit(s.next())) / logMiss).rounded(.down)
                guard gap < Double(count - i - 1) else { break }
                i += Int(gap) + 1
                out.append(i)
            }
        }
        return out
    }

    /// Adds an independent N(0, std²) draw to every element, under one lock: Marsaglia's polar
    /// method on one 64-bit draw per attempt (two 32-bit uniforms u, v in (−1, 1), symmetric about
    /// 0 and never 0; accepted when s = u² + v² < 1, π/4 of the attempts) giving the two normals
    /// u·√(−2 ln s / s) and v·√(−2 ln s / s), computed in Double. No sine or cosine, one logarithm
    /// per pair; the smallest s (2⁻⁶³) gives |z| up to 9.3σ, so the tails are not cut where the
    /// privacy analysis could notice. DP-SGD adds a model's worth (390,410 for the reference CNN)
    /// every step.
    public func addGaussianNoise(_ values: UnsafeMutableBufferPointer<Float>, std: Double) {
        guard std > 0, let out = values.baseAddress, !values.isEmpty else { return }
        let count = values.count
        withUnsafeTemporaryAllocation(of: UInt64.self, capacity: 2048) { words in
            source.withLock { s in
                var filled = 0
                while filled < count {
                    // Enough attempts for what is left (4/π ≈ 1.27 per pair), in blocks of at most 2,048.
                    let attempts = min(words.count, (count - filled) * 2 / 3 + 8)
                    for j in 0..<attempts { words[j] = s.next() }
                    for j in 0..<attempts {
                        let w = words[j]
                        let u = Double(Int32(truncatingIfNeeded: w)) * 0x1p-31 + 0x1p-32
                        let v = Double(Int32(truncatingIfNeeded: w >> 32)) * 0x1p-31 + 0x1p-32
                        let r2 = u * u + v * v
                        guard r2 < 1 else { continue }
                        let f = (-2 * log(r2) / r2).squareRoot() * std
                        out[filled] += Float(u * f)
                        filled += 1
                        if filled == count { return }
                        out[filled] += Float(v * f)
                        filled += 1
                        if filled == count { return }
                    }
                }
            }
        }
    }

    /// One N(mean, std²) draw.
    func gaussian(mean: Double, std: Double) -> Double {
        mean + gaussians(count: 1, std: std)[0]
    }
}

/// A cryptographically secure generator seeded by the kernel: the keystream of AES-256 in counter
/// mode (the ciphertext of 64 KiB of zeros under AES-GCM with a per-block counter nonce; the tag is
/// discarded), the key drawn from `SystemRandomNumberGenerator` (getrandom(2)) when the generator
/// is made. A counter-mode DRBG of this kind is what NIST SP 800-90A's CTR_DRBG builds on; it
/// replaces reading /dev/urandom, which cost ~30 ms of kernel ChaCha20 per DP-SGD step on the
/// shared 2-core machine (390,410 Gaussians; BENCHMARKS.md "Record-level DP-SGD"). A nonce is
/// never reused under one key (64-bit counter; the generator refuses to wrap it). If sealing
/// failed (it cannot for these sizes), the block comes from `SystemRandomNumberGenerator` instead.
/// Used only under DPRandom's lock.
final class KeystreamRandom: @unchecked Sendable {
    private static let blockBytes = 1 << 16
    private static let zeros = Data(count: blockBytes)
    private let key: SymmetricKey
    private var counter: UInt64 = 0
    private var block = [UInt64](repeating: 0, count: blockBytes / 8)
    private var index = blockBytes / 8

    init() {
        var system = SystemRandomNumberGenerator()
        key = SymmetricKey(data: (0..<4).flatMap { _ in withUnsafeBytes(of: system.next()) { Array($0) } })
    }

    /// A stream under the 32-byte key `keyBytes`: tests only (the known-answer check).
    init(keyBytes: [UInt8]) { key = SymmetricKey(data: keyBytes) }

    func next() -> UInt64 {
        if index == block.count { refill() }
        defer { index += 1 }
        return block[index]
    }

    private func refill() {
        precondition(counter < .max, "keystream counter exhausted")
        var nonce = [UInt8](repeating: 0, count: 12)
        withUnsafeBytes(of: counter.littleEndian) { for (i, b) in $0.enumerated() { nonce[i] = b } }
        counter += 1
        index = 0
        if let n = try? AES.GCM.Nonce(data: nonce), let box = try? AES.GCM.seal(Self.zeros, using: key, nonce: n),
           box.ciphertext.count == Self.blockBytes {
            block.withUnsafeMutableBytes { dst in box.ciphertext.withUnsafeBytes { dst.copyMemory(from: $0) } }
            return
        }
        var system = SystemRandomNumberGenerator()
        for i in block.indices { block[i] = system.next() }
    }
}
