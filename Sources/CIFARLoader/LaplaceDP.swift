// LaplaceDP: the Laplace mechanism (Dwork, McSherry, Nissim & Smith 2006) applied to the pixels a
// client trains on, before training:
//   x ← clip(x, 0, 1);  x ← x + Laplace(0, Δ/ε) drawn independently per pixel;  x ← clip(x, 0, 1).
// The first clip bounds the sensitivity, the last is post-processing (costs no privacy).
//   unit .pixel: Δ = 1 (one pixel moves by at most 1). Each pixel value is ε-DP; a whole image of
//                d pixels is only d·ε-DP (basic composition). Protects single pixel values.
//   unit .image: Δ = d (the L1 distance between any two images in [0, 1]^d). Each image is ε-DP
//                (local DP per example). Noise scale d/ε: at d = 784 and ε = 1 the noise dwarfs
//                the signal, so training on it learns next to nothing. Honest, not useful, at small ε.
// Noise comes from inverse-CDF sampling of uniform doubles in (0, 1) drawn from SeededGenerator
// (xoshiro256**). Caveats, stated plainly: the generator is not cryptographic, so anyone who
// learns the seed can subtract the noise (keep the ledger, which records it, as private as the
// raw data); and textbook floating-point Laplace sampling leaks through the low-order bits of its
// output (Mironov 2012, "On significance of the least significant bits for differential privacy").
// Here the noised value is rounded to float32 and clipped, which blurs but does not provably remove that.
import Foundation

/// The Laplace mechanism on images with pixels in [0, 1].
public struct LaplaceDP: Sendable {
    /// What one unit of privacy protects.
    public enum Unit: String, CaseIterable, Sendable, Codable {
        /// Δ = 1: each pixel value is ε-DP (a d-pixel image only d·ε-DP).
        case pixel
        /// Δ = d: each whole image is ε-DP (local DP per example); very noisy at small ε.
        case image

        /// Parses "pixel" | "image" with an error listing the choices.
        public static func parse(_ text: String) throws -> Unit {
            guard let unit = Unit(rawValue: text.lowercased()) else {
                throw LoaderError.unknownChoice(what: "--dp-unit", value: text, choices: allCases.map(\.rawValue))
            }
            return unit
        }

        /// The guarantee in one sentence (for --help and the README).
        public var guarantee: String {
            switch self {
            case .pixel:
                return "pixel: Laplace noise of scale 1/ε per pixel makes each pixel value ε-DP; a whole image of d pixels is only d·ε-DP by composition."
            case .image:
                return "image: Laplace noise of scale d/ε per pixel (d = C·H·W) makes each whole image ε-DP (local DP per example); at small ε this noise destroys the data's utility."
            }
        }
    }

    /// Privacy parameter ε of this release (> 0).
    public var epsilon: Double
    /// What ε protects: a pixel or a whole image.
    public var unit: Unit
    /// Seed of the noise; the same seed gives the same noise.
    public var seed: UInt64

    /// A mechanism with privacy parameter `epsilon` (> 0) for `unit`, noise seeded by `seed`.
    public init(epsilon: Double, unit: Unit, seed: UInt64) {
        self.epsilon = epsilon; self.unit = unit; self.seed = seed
    }

    /// L1 sensitivity Δ for images of `imageSize` = C·H·W values.
    public func sensitivity(imageSize: Int) -> Double { unit == .pixel ? 1 : Double(imageSize) }

    /// Noise scale b = Δ/ε.
    public func scale(imageSize: Int) -> Double { sensitivity(imageSize: imageSize) / epsilon }

    /// Values per independently seeded noise chunk: the noise is the same whatever the core count.
    static let chunk = 1 << 16

    /// Clips `images` (NCHW float32, `imageSize` values per image) to [0, 1], adds Laplace(0, Δ/ε)
    /// to every value, and clips again. Deterministic for a given seed; runs on all cores.
    public func privatize(_ images: inout [Float], imageSize: Int) {
        precondition(epsilon > 0 && epsilon.isFinite, "epsilon must be positive and finite")
        let b = scale(imageSize: imageSize), seed = self.seed
        let total = images.count, chunks = (total + Self.chunk - 1) / Self.chunk
        images.withUnsafeMutableBufferPointer { buf in
            guard let base = buf.baseAddress else { return }
            let target = DisjointChunks(base: base)
            DispatchQueue.concurrentPerform(iterations: chunks) { c in
                var rng = SeededGenerator(seed: seed, stream: 0x4C41_5000 &+ UInt64(c))  // "LAP"
                let start = c * Self.chunk, end = min(total, start + Self.chunk)
                let p = target.base
                for i in start ..< end {
                    let x = Double(min(max(p[i], 0), 1))
                    let y = x + Self.laplace(rng.nextOpenUnit(), scale: b)
                    p[i] = Float(min(max(y, 0), 1))
                }
            }
        }
    }

    /// Laplace(0, scale) by the inverse CDF at u ∈ (0, 1): −b·sgn(u − ½)·ln(1 − 2|u − ½|).
    @inline(__always)
    public static func laplace(_ u: Double, scale b: Double) -> Double {
        let v = u - 0.5
        let magnitude = -b * log1p(-2 * abs(v))
        return v < 0 ? -magnitude : magnitude
    }

    /// The Laplace(0, b) cumulative distribution function (for tests and checks).
    public static func cdf(_ x: Double, scale b: Double) -> Double {
        x < 0 ? 0.5 * exp(x / b) : 1 - 0.5 * exp(-x / b)
    }
}

/// A base pointer shared by `concurrentPerform` iterations; each iteration writes a disjoint range
/// (chunk c owns [c·chunk, (c+1)·chunk)), so there is no data race.
struct DisjointChunks: @unchecked Sendable {
    let base: UnsafeMutablePointer<Float>
}
