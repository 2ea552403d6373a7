import Testing
@testable import Tensor

/// GroupNorm forward against the two-pass Double reference; backward (dX, dγ, dβ) against
/// central differences of the reference.
struct GroupNormTests {
    @Test(arguments: [(2, 4, 2, true), (3, 6, 3, false), (1, 4, 1, false), (2, 3, 3, true)])
    func matchesReferenceAndFiniteDifferences(_ n: Int, _ c: Int, _ groups: Int, _ nchw: Bool) {
        let x = nchw ? ImageLayout.nchw(n, c, 3, 5) : ImageLayout.cnhw(n, c, 3, 5)
        let input = randomFloats(x.count, seed: 51), gamma = randomFloats(c, seed: 52), beta = randomFloats(c, seed: 53)
        let dY = randomFloats(x.count, seed: 54)
        func reference(_ i: [Float], _ gm: [Float], _ bt: [Float]) -> [Float] {
            var out = [Float](repeating: 0, count: x.count)
            i.withPtr { pi in gm.withPtr { pg in bt.withPtr { pb in out.withMutPtr { po in
                groupNormForwardReference(pi, x, groups: groups, eps: 1e-5, gamma: pg, beta: pb, output: po)
            } } } }
            return out
        }
        var fast = [Float](repeating: 0, count: x.count), stats = [Float](repeating: 0, count: 2 * n * groups)
        input.withPtr { pi in gamma.withPtr { pg in beta.withPtr { pb in fast.withMutPtr { po in stats.withMutPtr { ps in
            groupNormForward(pi, x, groups: groups, eps: 1e-5, gamma: pg, beta: pb, output: po, stats: ps, threads: 2)
        } } } } }
        #expect(maxAbsDiff(fast, reference(input, gamma, beta)) <= 1e-5)
        var dX = [Float](repeating: 0, count: x.count), dG = [Float](repeating: 0, count: c), dB = dG
        input.withPtr { pi in gamma.withPtr { pg in stats.withPtr { ps in dY.withPtr { pd in
            dX.withMutPtr { a in dG.withMutPtr { b in dB.withMutPtr { d in
                groupNormBackward(pi, x, groups: groups, gamma: pg, stats: ps, outGrad: pd, gammaGrad: b, betaGrad: d,
                                  inputGrad: a, threads: 2)
            } } }
        } } } }
        for i in Set([0, 3, x.count / 2, x.count - 1]) {
            let fd = centralDifference(input, i, eps: 1e-3, { reference($0, gamma, beta) }, dY)
            #expect(abs(Double(dX[i]) - fd) <= 2e-3 * max(1, abs(fd)), "dX[\(i)] \(dX[i]) vs \(fd)")
        }
        for i in 0..<c {
            let fg = centralDifference(gamma, i, eps: 1e-3, { reference(input, $0, beta) }, dY)
            let fb = centralDifference(beta, i, eps: 1e-3, { reference(input, gamma, $0) }, dY)
            #expect(abs(Double(dG[i]) - fg) <= 2e-3 * max(1, abs(fg)), "dγ[\(i)]")
            #expect(abs(Double(dB[i]) - fb) <= 2e-3 * max(1, abs(fb)), "dβ[\(i)]")
        }
    }
}
