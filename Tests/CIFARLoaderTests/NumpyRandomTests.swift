@testable import CIFARLoader
import Foundation
import XCTest

/// NumpyGenerator must reproduce `numpy.random.default_rng(seed)` bit for bit: that is what makes
/// our Dirichlet split identical to Flower Datasets' for the same seed.
final class NumpyRandomTests: XCTestCase {
    /// Printed once by numpy 2.4: `default_rng(42).bit_generator.random_raw(3)`, `random(2)`,
    /// `SeedSequence(42).generate_state(4, np.uint64)` and `default_rng(42).dirichlet([0.5]*10)`.
    func testSeed42MatchesNumbersNumpyPrinted() {
        XCTAssertEqual(NumpyGenerator.seedSequenceState(entropy: 42, count: 4),
                       [11_465_652_750_463_011_511, 15_382_171_918_060_459_190, 9_018_504_550_953_525_431, 3_703_499_796_004_394_495])
        var g = NumpyGenerator(seed: 42)
        XCTAssertEqual((0 ..< 3).map { _ in g.nextUInt64() }, [0xC621_FBCD_16D9_2688, 0x705A_5661_A791_FFC1, 0xDBCD_12C2_6EDA_1624])
        g = NumpyGenerator(seed: 42)
        XCTAssertEqual(g.nextDouble(), 0.7739560485559633)
        XCTAssertEqual(g.nextDouble(), 0.4388784397520523)
        g = NumpyGenerator(seed: 42)
        XCTAssertEqual(g.dirichlet([Double](repeating: 0.5, count: 10)),
                       [0.14433712351248393, 0.22970014998421762, 0.0015912735024699194, 0.13559879961313617,
                        0.002944710536870744, 0.024667591138138434, 0.08045383179476771, 0.055822574736185834,
                        0.19125820711666192, 0.13362573806506753])
    }

    /// Every distribution the partitioner can reach, over many seeds (including seeds above 2^32,
    /// which SeedSequence hashes as two words), against live numpy, compared as bit patterns.
    /// Thousands of draws per distribution reach the ziggurats' rare branches (about 1% of draws).
    func testDrawsMatchLiveNumpyBitForBit() throws {
        let seeds: [UInt64] = [0, 1, 42, 2024, 4_294_967_295, 4_294_967_296, 123_456_789_012_345]
        let out = try runNumpy("""
            import struct
            def b(x): return format(struct.unpack('<Q', struct.pack('<d', float(x)))[0], 'x')
            for s in \(seeds):
                g = np.random.default_rng(s)
                r = [format(int(v), 'x') for v in g.bit_generator.random_raw(3)]
                r += [b(g.random()) for _ in range(3)]
                r += [b(v) for v in g.standard_exponential(3000)]
                r += [b(v) for v in g.standard_normal(3000)]
                r += [b(g.standard_gamma(k)) for k in (0.3, 1.0, 2.5, 0.5, 7.0) for _ in range(300)]
                r += [b(g.beta(0.05, 0.3)) for _ in range(50)] + [b(g.beta(2.0, 0.7)) for _ in range(50)]
                for a in ([0.5] * 10, [0.05] * 7, [1.0] * 4, [3.0, 0.2, 0.7]):
                    r += [b(v) for _ in range(20) for v in g.dirichlet(a)]
                print(' '.join(r))
            """, self)
        let lines = out.split(separator: "\n")
        XCTAssertEqual(lines.count, seeds.count)
        for (seed, line) in zip(seeds, lines) {
            var g = NumpyGenerator(seed: seed)
            func b(_ x: Double) -> String { String(x.bitPattern, radix: 16) }
            var r = (0 ..< 3).map { _ in String(g.nextUInt64(), radix: 16) }
            r += (0 ..< 3).map { _ in b(g.nextDouble()) }
            r += (0 ..< 3000).map { _ in b(g.standardExponential()) }
            r += (0 ..< 3000).map { _ in b(g.standardNormal()) }
            for k in [0.3, 1.0, 2.5, 0.5, 7.0] { r += (0 ..< 300).map { _ in b(g.standardGamma(shape: k)) } }
            r += (0 ..< 50).map { _ in b(g.beta(0.05, 0.3)) } + (0 ..< 50).map { _ in b(g.beta(2.0, 0.7)) }
            for a in [[Double](repeating: 0.5, count: 10), [Double](repeating: 0.05, count: 7), [1, 1, 1, 1], [3.0, 0.2, 0.7]] {
                for _ in 0 ..< 20 { r += g.dirichlet(a).map(b) }
            }
            let expected = line.split(separator: " ").map(String.init)
            XCTAssertEqual(r.count, expected.count, "seed \(seed): draw count")
            if let i = r.indices.first(where: { $0 < expected.count && r[$0] != expected[$0] }) {
                XCTFail("seed \(seed): draw \(i) differs from numpy: \(r[i]) vs \(expected[i])")
            }
        }
    }

    /// Gamma(k, 1) has mean k and variance k; Dirichlet(α) components have mean 1/K and sum to 1,
    /// also for α = 0.001 (the stick-breaking branch).
    func testGammaAndDirichletMoments() {
        var g = NumpyGenerator(seed: 9)
        for shape in [0.3, 1.0, 4.5] {
            let n = 40000
            let xs = (0 ..< n).map { _ in g.standardGamma(shape: shape) }
            let mean = xs.reduce(0, +) / Double(n)
            let variance = xs.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(n)
            XCTAssertEqual(mean, shape, accuracy: 0.03 * shape + 0.01, "Gamma(\(shape)) mean")
            XCTAssertEqual(variance, shape, accuracy: 0.08 * shape + 0.02, "Gamma(\(shape)) variance")
        }
        var sums = [Double](repeating: 0, count: 4)
        for _ in 0 ..< 10000 {
            let p = g.dirichlet([0.5, 0.5, 0.5, 0.5])
            XCTAssertEqual(p.reduce(0, +), 1, accuracy: 1e-12)
            for i in 0 ..< 4 { sums[i] += p[i] }
        }
        for s in sums { XCTAssertEqual(s / 10000, 0.25, accuracy: 0.01) }
        let tiny = g.dirichlet([Double](repeating: 0.001, count: 10))
        XCTAssertEqual(tiny.reduce(0, +), 1, accuracy: 1e-12)
        XCTAssert(tiny.allSatisfy { $0.isFinite && $0 >= 0 })
    }
}
