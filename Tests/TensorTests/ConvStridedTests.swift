import Testing
@testable import Tensor

/// The explicit-im2col convolution (any kernel 1-7, stride 1-2, padding) against the direct-loop
/// reference on odd shapes in both layouts, and its backward against finite differences.
struct ConvStridedTests {
    struct Case: CustomStringConvertible, Sendable {
        let n, cin, cout, h, w, k, s, p: Int
        let nchw: Bool
        var description: String { "n\(n) \(cin)->\(cout) \(h)x\(w) k\(k) s\(s) p\(p) \(nchw ? "NCHW" : "CNHW")" }
    }
    static let cases = [
        Case(n: 2, cin: 3, cout: 5, h: 9, w: 7, k: 5, s: 1, p: 0, nchw: true),   // LeNet-5's unpadded 5x5
        Case(n: 2, cin: 2, cout: 3, h: 8, w: 7, k: 3, s: 2, p: 1, nchw: false),  // ResNet's stride-2 3x3
        Case(n: 3, cin: 4, cout: 2, h: 5, w: 6, k: 1, s: 2, p: 0, nchw: false),  // 1x1 stride-2 shortcut
        Case(n: 1, cin: 2, cout: 3, h: 9, w: 8, k: 7, s: 2, p: 3, nchw: true),
        Case(n: 2, cin: 1, cout: 4, h: 6, w: 5, k: 2, s: 1, p: 1, nchw: false),
    ]

    @Test(arguments: cases, [1, 2])
    func fastMatchesReference(_ c: Case, threads: Int) throws {
        let g = ConvGeometry(inChannels: c.cin, outChannels: c.cout, kernel: c.k, stride: c.s, pad: c.p)
        let x = c.nchw ? ImageLayout.nchw(c.n, c.cin, c.h, c.w) : ImageLayout.cnhw(c.n, c.cin, c.h, c.w)
        let y = g.outLayout(x)
        let input = randomFloats(x.count, seed: 1), weight = randomFloats(c.cout * g.colRows, seed: 2)
        let bias = randomFloats(c.cout, seed: 3), dY = randomFloats(y.count, seed: 4)
        let ws = try GEMMWorkspace(threads: threads)
        var col = [Float](repeating: 0, count: g.colCount(x))
        for relu in [false, true] {
            var fast = [Float](repeating: 0, count: y.count), ref = fast
            input.withPtr { pi in weight.withPtr { pw in bias.withPtr { pb in
                fast.withMutPtr { po in col.withMutPtr { pc in
                    convStridedForward(pi, x, g, weight: pw, bias: pb, output: po, relu: relu, col: pc, threads: threads,
                                       gemmWorkspace: ws)
                } }
                ref.withMutPtr { po in convStridedForwardReference(pi, x, g, weight: pw, bias: pb, output: po, relu: relu) }
            } } }
            #expect(maxAbsDiff(fast, ref) <= 1e-4, "forward \(c) relu \(relu)")
        }
        var dW = [Float](repeating: 0, count: weight.count), dB = [Float](repeating: 0, count: c.cout)
        var dX = [Float](repeating: 0, count: x.count)
        var rW = dW, rB = dB, rX = dX
        input.withPtr { pi in weight.withPtr { pw in dY.withPtr { pg in
            dW.withMutPtr { a in dB.withMutPtr { b in dX.withMutPtr { d in col.withMutPtr { pc in
                convStridedBackward(pi, x, g, weight: pw, outGrad: pg, weightGrad: a, biasGrad: b, inputGrad: d, col: pc,
                                    threads: threads, gemmWorkspace: ws)
            } } } }
            rW.withMutPtr { a in rB.withMutPtr { b in rX.withMutPtr { d in
                convStridedBackwardReference(pi, x, g, weight: pw, outGrad: pg, weightGrad: a, biasGrad: b, inputGrad: d)
            } } }
        } } }
        #expect(maxAbsDiff(dW, rW) <= 1e-3, "dW \(c)")
        #expect(maxAbsDiff(dB, rB) <= 1e-4, "dB \(c)")
        #expect(maxAbsDiff(dX, rX) <= 1e-4, "dX \(c)")
    }

    /// The fast backward against central differences of the reference forward (Double).
    @Test(arguments: cases)
    func backwardMatchesFiniteDifferences(_ c: Case) throws {
        let g = ConvGeometry(inChannels: c.cin, outChannels: c.cout, kernel: c.k, stride: c.s, pad: c.p)
        let x = c.nchw ? ImageLayout.nchw(c.n, c.cin, c.h, c.w) : ImageLayout.cnhw(c.n, c.cin, c.h, c.w)
        let y = g.outLayout(x)
        let input = randomFloats(x.count, seed: 5), weight = randomFloats(c.cout * g.colRows, seed: 6)
        let bias = randomFloats(c.cout, seed: 7), dY = randomFloats(y.count, seed: 8)
        func conv(_ i: [Float], _ w: [Float]) -> [Float] {
            var out = [Float](repeating: 0, count: y.count)
            i.withPtr { pi in w.withPtr { pw in bias.withPtr { pb in out.withMutPtr { po in
                convStridedForwardReference(pi, x, g, weight: pw, bias: pb, output: po, relu: false)
            } } } }
            return out
        }
        let ws = try GEMMWorkspace(threads: 2)
        var col = [Float](repeating: 0, count: g.colCount(x))
        var dW = [Float](repeating: 0, count: weight.count), dB = [Float](repeating: 0, count: c.cout)
        var dX = [Float](repeating: 0, count: x.count)
        input.withPtr { pi in weight.withPtr { pw in dY.withPtr { pg in
            dW.withMutPtr { a in dB.withMutPtr { b in dX.withMutPtr { d in col.withMutPtr { pc in
                convStridedBackward(pi, x, g, weight: pw, outGrad: pg, weightGrad: a, biasGrad: b, inputGrad: d, col: pc,
                                    threads: 2, gemmWorkspace: ws)
            } } } }
        } } }
        for i in Set([0, x.count / 3, x.count - 1]) {
            let fd = centralDifference(input, i, { conv($0, weight) }, dY)
            #expect(abs(Double(dX[i]) - fd) <= 1e-3 * max(1, abs(fd)), "dX[\(i)] \(dX[i]) vs \(fd) \(c)")
        }
        for i in Set([0, weight.count / 2, weight.count - 1]) {
            let fd = centralDifference(weight, i, { conv(input, $0) }, dY)
            #expect(abs(Double(dW[i]) - fd) <= 1e-3 * max(1, abs(fd)), "dW[\(i)] \(dW[i]) vs \(fd) \(c)")
        }
    }
}
