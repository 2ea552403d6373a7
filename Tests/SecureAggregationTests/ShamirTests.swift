// Shamir sharing and GF(2^61 − 1) arithmetic against hand-computed values.
import Testing
@testable import SecureAggregation

struct ShamirTests {
    let p = Field61.p  // 2305843009213693951

    @Test func fieldArithmeticMatchesHandComputedValues() {
        #expect(Field61.add(p - 1, 5) == 4)
        #expect(Field61.sub(3, 5) == p - 2)
        // (p − 1)² = p² − 2p + 1 ≡ 1
        #expect(Field61.mul(p - 1, p - 1) == 1)
        // 2^60 · 4 = 2^62 = 2·2^61 ≡ 2
        #expect(Field61.mul(1 << 60, 4) == 2)
        #expect(Field61.mul(123_456_789, 987_654_321) == 121_932_631_112_635_269)
        #expect(Field61.mul(Field61.inverse(3), 3) == 1)
        // 2^61 ≡ 1, so 2⁻¹ = (p + 1)/2 = 2^60
        #expect(Field61.inverse(2) == 1 << 60)
    }

    @Test func secretBytesPackIntoLittleEndianSevenByteChunks() {
        let secret = (1...32).map { UInt8($0) }
        let e = Shamir.elements(of: secret)
        #expect(e[0] == 0x07_06_05_04_03_02_01)
        #expect(e[1] == 0x0e_0d_0c_0b_0a_09_08)
        #expect(e[4] == 0x20_1f_1e_1d)  // bytes 29...32, padding zero
        #expect(Shamir.bytes(of: e) == secret)
        // Non-zero padding (a wrong share set) does not decode.
        #expect(Shamir.bytes(of: [0, 0, 0, 0, 1 << 40]) == nil)
        #expect(Shamir.bytes(of: [1 << 56, 0, 0, 0, 0]) == nil)
    }

    /// f(x) = 1234 + 166x: shares at x = 1, 2, 3 are 1400, 1566, 1732; any two give f(0) = 1234.
    @Test(arguments: [[0, 1], [1, 2], [0, 2]])
    func degreeOnePolynomialByHand(pick: [Int]) {
        let coefficients: [UInt64] = [1234, 166]
        let xs: [UInt64] = [1, 2, 3]
        let ys = xs.map { Shamir.evaluate(coefficients, at: $0) }
        #expect(ys == [1400, 1566, 1732])
        let got = Shamir.reconstructElements(xs: pick.map { xs[$0] }, ys: pick.map { [ys[$0], 0, 0, 0, 0] })
        #expect(got == [1234, 0, 0, 0, 0])
    }

    /// A share beyond the threshold checks the others: (3, 1732) lies on 1234 + 166x, (3, 1733) does not.
    @Test func extraShareChecksConsistency() {
        let ys: [[UInt64]] = [[1400, 0, 0, 0, 0], [1566, 0, 0, 0, 0]]
        #expect(Shamir.isConsistent(xs: [1, 2], ys: ys, x: 3, y: [1732, 0, 0, 0, 0]))
        #expect(!Shamir.isConsistent(xs: [1, 2], ys: ys, x: 3, y: [1733, 0, 0, 0, 0]))
        #expect(!Shamir.isConsistent(xs: [1, 2], ys: ys, x: 3, y: [1732, 0, 0, 1, 0]))
    }

    /// f(x) = (p − 1) + (p − 1)x + 2x² at x = 2: −1 − 2 + 8 = 5; at x = 5: −1 − 5 + 50 = 44;
    /// at x = 7: −1 − 7 + 98 = 90. Lagrange over {2, 5, 7} gives back p − 1 (wrap-around on both sides).
    @Test func degreeTwoWithWrapAroundByHand() {
        let coefficients: [UInt64] = [p - 1, p - 1, 2]
        #expect(Shamir.evaluate(coefficients, at: 2) == 5)
        #expect(Shamir.evaluate(coefficients, at: 5) == 44)
        #expect(Shamir.evaluate(coefficients, at: 7) == 90)
        let got = Shamir.reconstructElements(xs: [2, 5, 7], ys: [[5, 0, 0, 0, 0], [44, 0, 0, 0, 0], [90, 0, 0, 0, 0]])
        #expect(got[0] == p - 1)
    }

    @Test(arguments: [(1, 1), (2, 3), (3, 5), (5, 8), (11, 20)])
    func anyThresholdSubsetReconstructsAndFewerDoNot(t: Int, holders: Int) {
        var rng = SystemRandomNumberGenerator()
        let secret = (0..<32).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let xs = (0..<holders).map { UInt64($0 * 3 + 1) }
        let shares = Shamir.split(secret: secret, threshold: t, xs: xs, using: &rng)
        let last = Array(xs.indices.suffix(t))
        #expect(Shamir.reconstruct(xs: last.map { xs[$0] }, ys: last.map { shares[$0] }) == secret)
        let first = Array(xs.indices.prefix(t))
        #expect(Shamir.reconstruct(xs: first.map { xs[$0] }, ys: first.map { shares[$0] }) == secret)
        if t > 1 {
            // t − 1 shares interpolate a different polynomial: the secret does not come out.
            let few = Array(xs.indices.prefix(t - 1))
            #expect(Shamir.reconstruct(xs: few.map { xs[$0] }, ys: few.map { shares[$0] }) != secret)
        }
    }
}
