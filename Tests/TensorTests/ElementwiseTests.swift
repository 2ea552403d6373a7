import Testing
@testable import Tensor

/// Residual add and seeded dropout against scalar expectations.
struct ElementwiseTests {
    @Test(arguments: [1, 8, 19])
    func addIsElementwise(_ count: Int) {
        let a = randomFloats(count, seed: 61), b = randomFloats(count, seed: 62)
        var y = [Float](repeating: 0, count: count)
        a.withPtr { pa in b.withPtr { pb in y.withMutPtr { py in addForward(pa, pb, py, count: count) } } }
        #expect(y == zip(a, b).map { $0 + $1 })
    }

    /// Same seed, same mask; kept entries scaled by 1/(1−p); the dropped fraction near p.
    @Test(arguments: [0.1, 0.5])
    func dropoutMaskIsSeededAndScaled(_ p: Double) {
        let count = 20_000
        var m1 = [Float](repeating: 0, count: count), m2 = m1
        var r1 = SplitMix64(seed: 9), r2 = SplitMix64(seed: 9)
        m1.withMutPtr { dropoutMask($0, count: count, p: Float(p), rng: &r1) }
        m2.withMutPtr { dropoutMask($0, count: count, p: Float(p), rng: &r2) }
        #expect(m1 == m2)
        let keep = Float(1 / (1 - p))
        #expect(m1.allSatisfy { $0 == 0 || $0 == keep })
        let dropped = Double(m1.filter { $0 == 0 }.count) / Double(count)
        #expect(abs(dropped - p) < 0.02, "dropped \(dropped) for p \(p)")
        let x = randomFloats(count, seed: 63)
        var y = [Float](repeating: 0, count: count)
        x.withPtr { px in m1.withPtr { pm in y.withMutPtr { multiply(px, pm, $0, count: count) } } }
        #expect(y == zip(x, m1).map { $0 * $1 })
    }
}
