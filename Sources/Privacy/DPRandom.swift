// The randomness of DP-FedAvg: which clients take part (Poisson sampling) and the Gaussian noise.
import FlowerCore
import Foundation
import Synchronization

/// Where DP-FedAvg's random bits come from.
public enum DPRandomness: Sendable, Equatable {
    /// The kernel's cryptographically secure generator, the source of `SystemRandomNumberGenerator`
    /// (getrandom(2)), read from /dev/urandom in 32 KiB blocks (`KernelRandom`); every real run
    /// uses this: noise anyone can predict protects nothing.
    case system
    /// SplitMix64 from a seed: reproducible, for tests only (no CLI flag sets it).
    case seeded(UInt64)
}

/// A thread-safe source of DP-FedAvg's and DP-SGD's random draws.
public final class DPRandom: Sendable {
    private enum Source {
        case system(KernelRandom)
        case seeded(SplitMix64)

        mutating func next() -> UInt64 {
            switch self {
            case .system(var g):
                let x = g.next()
                self = .system(g)
                return x
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
        case .system: source = Mutex(.system(KernelRandom()))
        case .seeded(let seed): source = Mutex(.seeded(SplitMix64(seed: seed)))
        }
    }

    deinit {
        source.withLock { s in
            if case .system(let k) = s, k.fd >= 0 { close(k.fd) }
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

    /// Adds an independent N(0, std²) draw to every element (Box–Muller in Double, one 64-bit
    /// draw per value), under one lock.
    public func addGaussianNoise(_ values: UnsafeMutableBufferPointer<Float>, std: Double) {
        guard std > 0, !values.isEmpty else { return }
        source.withLock { s in
            var i = 0
            let count = values.count
            while i < count {
                let r = (-2 * log(Self.unit(s.next()))).squareRoot() * std
                let theta = 2 * Double.pi * Self.unit(s.next())
                values[i] += Float(r * cos(theta))
                if i + 1 < count { values[i + 1] += Float(r * sin(theta)) }
                i += 2
            }
        }
    }

    /// One N(mean, std²) draw.
    func gaussian(mean: Double, std: Double) -> Double {
        mean + gaussians(count: 1, std: std)[0]
    }
}

/// The kernel's CSPRNG read in blocks: `SystemRandomNumberGenerator` makes one getrandom(2) call
/// per 8 bytes, 3.8–4.0 s per 10⁶ draws on the shared 2-core machine against 0.18–0.31 s for 32 KiB
/// reads of /dev/urandom (Benchmarks/secure_random.swift, BENCHMARKS.md "User-level DP"); one noise vector per round is a model's
/// worth of draws. Without /dev/urandom, or on a short read, it draws from
/// `SystemRandomNumberGenerator` instead.
struct KernelRandom: RandomNumberGenerator {
    /// Descriptor of /dev/urandom, or −1.
    let fd: Int32
    private var buffer = [UInt64](repeating: 0, count: 4096)
    private var index = 4096
    private var fallback = SystemRandomNumberGenerator()

    init() { fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC) }

    mutating func next() -> UInt64 {
        if index == buffer.count {
            let want = buffer.count * MemoryLayout<UInt64>.size
            let got = fd >= 0 ? buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, want) } : -1
            guard got == want else { return fallback.next() }
            index = 0
        }
        defer { index += 1 }
        return buffer[index]
    }
}
