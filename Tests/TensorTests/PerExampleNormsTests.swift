// Per-example squared gradient norms against scalar references on odd shapes.
import Testing
@testable import Tensor

private func random(_ count: Int, seed: UInt64) -> [Float] {
    var rng = SplitMix64(seed: seed)
    return (0..<count).map { _ in Float.random(in: -1...1, using: &rng) }
}

struct PerExampleNormsTests {
    /// (batch, Cin, H, W, Cout, kernel, stride, pad, CNHW input)
    static let convCases: [(Int, Int, Int, Int, Int, Int, Int, Int, Bool)] = [
        (3, 2, 7, 5, 3, 3, 1, 1, false), (4, 3, 9, 9, 5, 5, 2, 2, true), (2, 1, 6, 6, 2, 1, 2, 0, true),
        (5, 4, 5, 7, 7, 3, 1, 1, true),
        // The Gram form (T·(K + Cout) < K·Cout): T 9 at stride 1, T 4 at stride 2.
        (3, 16, 3, 3, 24, 3, 1, 1, true), (2, 8, 4, 4, 16, 3, 2, 1, false),
    ]

    /// Which form each case and the reference CNN's layers take (28×28 input): the GEMM where T is
    /// large (conv1 T 784, conv2 T 196), the Gram form where it is small (conv3 T 49, conv4 T 9).
    @Test func gramFormIsChosenWhereItHasFewerFlops() {
        func gram(_ cin: Int, _ cout: Int, _ k: Int, _ s: Int, _ p: Int, _ t: Int) -> Bool {
            convPerExampleUsesGram(ConvGeometry(inChannels: cin, outChannels: cout, kernel: k, stride: s, pad: p), positions: t)
        }
        #expect(!gram(1, 32, 3, 1, 1, 784) && !gram(32, 64, 3, 1, 1, 196))
        #expect(gram(64, 128, 3, 1, 1, 49) && gram(128, 256, 3, 1, 1, 9))
        #expect(!gram(4, 7, 3, 1, 1, 35) && gram(16, 24, 3, 1, 1, 9) && gram(8, 16, 3, 2, 1, 4))
    }

    /// Example i's values, in CNHW and in [N, F], multiplied by scales[i]; the rest untouched.
    @Test func scaleExamplesScalesEachExamplesSlice() {
        let (n, c, h, w) = (3, 2, 2, 3)
        let scales: [Float] = [0.5, 1, -2]
        for l in [ImageLayout.cnhw(n, c, h, w), ImageLayout.nchw(n, c * h * w, 1, 1)] {
            let before = random(l.count, seed: 9)
            var after = before
            after.withUnsafeMutableBufferPointer { scaleExamples($0.baseAddress!, l, scales: scales, threads: 2) }
            for i in 0..<n { for ch in 0..<l.channels { for j in 0..<l.plane {
                let o = l.offset(i, ch, 0, 0) + j
                #expect(after[o] == before[o] * scales[i])
            } } }
        }
    }

    @Test(arguments: convCases)
    func convNormsMatchTheScalarReference(_ c: (Int, Int, Int, Int, Int, Int, Int, Int, Bool)) throws {
        let (n, cin, h, w, cout, k, s, p, cnhw) = c
        let g = ConvGeometry(inChannels: cin, outChannels: cout, kernel: k, stride: s, pad: p)
        let x = cnhw ? ImageLayout.cnhw(n, cin, h, w) : ImageLayout.nchw(n, cin, h, w)
        let t = g.outSize(h) * g.outSize(w)
        let input = random(x.count, seed: 1), dy = random(cout * n * t, seed: 2)
        let scratch = try PerExampleScratch(threads: 2, colFloats: g.colRows * t, weightFloats: cout * g.colRows)
        var ours = [Double](repeating: 0.5, count: n)   // accumulates onto what is there
        input.withUnsafeBufferPointer { xi in dy.withUnsafeBufferPointer { d in ours.withUnsafeMutableBufferPointer { o in
            convPerExampleSquaredNorms(xi.baseAddress!, x, g, outGrad: d.baseAddress!, norms: o.baseAddress!,
                                       scratch: scratch, threads: 2)
        } } }
        let reference = input.withUnsafeBufferPointer { xi in dy.withUnsafeBufferPointer { d in
            convPerExampleSquaredNormsReference(xi.baseAddress!, x, g, outGrad: d.baseAddress!)
        } }
        for i in 0..<n {
            #expect(abs(ours[i] - 0.5 - reference[i]) <= 1e-4 * reference[i], "example \(i): \(ours[i] - 0.5) vs \(reference[i])")
        }
    }

    @Test func linearNormIsTheOuterProductsNorm() {
        let (n, fin, fout) = (3, 5, 4)
        let x = random(n * fin, seed: 3), dy = random(n * fout, seed: 4)
        var ours = [Double](repeating: 0, count: n)
        x.withUnsafeBufferPointer { xi in dy.withUnsafeBufferPointer { d in
            linearPerExampleSquaredNorms(xi.baseAddress!, batch: n, inFeatures: fin, outFeatures: fout,
                                         outGrad: d.baseAddress!, norms: &ours)
        } }
        for i in 0..<n {
            var direct = 0.0
            for o in 0..<fout {
                let gi = Double(dy[i * fout + o])
                direct += gi * gi   // bias
                for j in 0..<fin { let v = gi * Double(x[i * fin + j]); direct += v * v }
            }
            #expect(abs(ours[i] - direct) <= 1e-5 * direct, "example \(i): \(ours[i]) vs \(direct)")
        }
    }

    @Test func groupNormNormsMatchPerExampleBackward() {
        let (n, c, h, w, groups) = (3, 4, 3, 5, 2)
        let x = ImageLayout.cnhw(n, c, h, w)
        let input = random(x.count, seed: 5), dy = random(x.count, seed: 6)
        let gamma = random(c, seed: 7), beta = random(c, seed: 8)
        var out = [Float](repeating: 0, count: x.count), stats = [Float](repeating: 0, count: 2 * n * groups)
        groupNormForward(input, x, groups: groups, eps: 1e-5, gamma: gamma, beta: beta, output: &out, stats: &stats, threads: 1)
        var ours = [Double](repeating: 0, count: n)
        groupNormPerExampleSquaredNorms(input, x, groups: groups, stats: stats, outGrad: dy, norms: &ours)
        // Example i alone (NCHW copy), through the batched backward: its dγ, dβ.
        for i in 0..<n {
            let one = ImageLayout.nchw(1, c, h, w)
            var xi = [Float](repeating: 0, count: one.count), di = xi
            for ch in 0..<c { for k in 0..<h * w {
                xi[ch * h * w + k] = input[x.offset(i, ch, 0, 0) + k]; di[ch * h * w + k] = dy[x.offset(i, ch, 0, 0) + k]
            } }
            var yi = xi, si = [Float](repeating: 0, count: 2 * groups), dg = [Float](repeating: 0, count: c), db = dg
            groupNormForward(xi, one, groups: groups, eps: 1e-5, gamma: gamma, beta: beta, output: &yi, stats: &si, threads: 1)
            groupNormBackward(xi, one, groups: groups, gamma: gamma, stats: si, outGrad: di, gammaGrad: &dg, betaGrad: &db,
                              inputGrad: nil, threads: 1)
            let direct = (dg + db).reduce(0.0) { $0 + Double($1) * Double($1) }
            #expect(abs(ours[i] - direct) <= 1e-4 * direct, "example \(i): \(ours[i]) vs \(direct)")
        }
    }
}
