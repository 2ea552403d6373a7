import Testing
@testable import Tensor

/// General max/average/global pooling against the Double reference, and their backward passes
/// against central differences (max: random distinct values, so no tie lies within eps).
struct PoolingTests {
    struct Case: CustomStringConvertible, Sendable {
        let n, c, h, w, k, s, p: Int
        let nchw: Bool
        var description: String { "n\(n) c\(c) \(h)x\(w) k\(k) s\(s) p\(p) \(nchw ? "NCHW" : "CNHW")" }
    }
    static let cases = [
        Case(n: 2, c: 3, h: 7, w: 5, k: 3, s: 2, p: 1, nchw: true),
        Case(n: 1, c: 2, h: 6, w: 6, k: 2, s: 2, p: 0, nchw: false),
        Case(n: 3, c: 1, h: 5, w: 8, k: 3, s: 1, p: 0, nchw: false),
        Case(n: 2, c: 2, h: 9, w: 9, k: 4, s: 3, p: 2, nchw: true),
    ]

    func layouts(_ c: Case, _ g: PoolGeometry) -> (ImageLayout, ImageLayout) {
        let x = c.nchw ? ImageLayout.nchw(c.n, c.c, c.h, c.w) : ImageLayout.cnhw(c.n, c.c, c.h, c.w)
        return (x, .cnhw(c.n, c.c, g.outSize(c.h), g.outSize(c.w)))
    }

    @Test(arguments: cases, [false, true])
    func forwardMatchesReferenceAndBackwardMatchesFiniteDifferences(_ c: Case, average: Bool) {
        let g = PoolGeometry(kernel: c.k, stride: c.s, pad: c.p)
        let (x, y) = layouts(c, g)
        let input = randomFloats(x.count, seed: 31), dY = randomFloats(y.count, seed: 32)
        func reference(_ i: [Float]) -> [Float] {
            var out = [Float](repeating: 0, count: y.count)
            i.withPtr { pi in out.withMutPtr { po in poolForwardReference(pi, x, g, average: average, output: po, y) } }
            return out
        }
        var fast = [Float](repeating: 0, count: y.count)
        input.withPtr { pi in fast.withMutPtr { po in
            if average { avgPoolForward(pi, x, g, output: po, y, threads: 2) } else { maxPoolForward(pi, x, g, output: po, y, threads: 2) }
        } }
        #expect(maxAbsDiff(fast, reference(input)) <= 1e-6, "forward \(c) average \(average)")
        var dX = [Float](repeating: 9, count: x.count)
        input.withPtr { pi in dY.withPtr { pg in dX.withMutPtr { d in
            if average { avgPoolBackward(x, g, outGrad: pg, y, inputGrad: d, threads: 2) } else {
                maxPoolBackward(pi, x, g, outGrad: pg, y, inputGrad: d, threads: 2)
            }
        } } }
        for i in 0..<x.count {
            let fd = centralDifference(input, i, eps: average ? 1e-3 : 1e-4, reference, dY)
            #expect(abs(Double(dX[i]) - fd) <= 2e-3, "dX[\(i)] \(dX[i]) vs \(fd) \(c) average \(average)")
        }
    }

    @Test(arguments: [true, false])
    func globalAverageMatchesFiniteDifferences(_ nchw: Bool) {
        let x = nchw ? ImageLayout.nchw(2, 3, 5, 4) : ImageLayout.cnhw(2, 3, 5, 4), y = ImageLayout.cnhw(2, 3, 1, 1)
        let input = randomFloats(x.count, seed: 41), dY = randomFloats(y.count, seed: 42)
        func f(_ i: [Float]) -> [Float] {
            var out = [Float](repeating: 0, count: y.count)
            i.withPtr { pi in out.withMutPtr { po in globalAvgPoolForward(pi, x, output: po, y, threads: 2) } }
            return out
        }
        var expected = [Float](repeating: 0, count: y.count)
        for n in 0..<2 { for c in 0..<3 {
            var s = 0.0
            for yy in 0..<5 { for xx in 0..<4 { s += Double(input[x.offset(n, c, yy, xx)]) } }
            expected[y.offset(n, c, 0, 0)] = Float(s / 20)
        } }
        #expect(maxAbsDiff(f(input), expected) <= 1e-6)
        var dX = [Float](repeating: 0, count: x.count)
        dY.withPtr { pg in dX.withMutPtr { d in globalAvgPoolBackward(x, outGrad: pg, y, inputGrad: d, threads: 2) } }
        for i in [0, 7, x.count - 1] {
            let fd = centralDifference(input, i, f, dY)
            #expect(abs(Double(dX[i]) - fd) <= 1e-4, "dX[\(i)]")
        }
    }
}
