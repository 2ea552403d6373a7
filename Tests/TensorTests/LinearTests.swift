import XCTest
@testable import Tensor

/// Linear forward/backward (GEMM) against the reference on odd sizes, and by finite differences.
final class LinearTests: XCTestCase {
    func testMatchesReference() throws {
        let (b, fin, fout) = (5, 37, 11)
        let ws = try GEMMWorkspace(threads: 2)
        let x = randomFloats(b * fin, seed: 41), w = randomFloats(fout * fin, seed: 42)
        let bias = randomFloats(fout, seed: 43), dy = randomFloats(b * fout, seed: 44)
        var y = [Float](repeating: 0, count: b * fout), ry = y
        var dW = [Float](repeating: 0, count: fout * fin), dB = [Float](repeating: 0, count: fout)
        var dX = [Float](repeating: 0, count: b * fin)
        var rW = dW, rB = dB, rX = dX
        x.withPtr { px in w.withPtr { pw in bias.withPtr { pb in dy.withPtr { pg in
            y.withMutPtr { linearForward(px, batch: b, inFeatures: fin, outFeatures: fout, weight: pw, bias: pb,
                                         output: $0, threads: 2, gemmWorkspace: ws) }
            ry.withMutPtr { linearForwardReference(px, batch: b, inFeatures: fin, outFeatures: fout, weight: pw,
                                                   bias: pb, output: $0) }
            dW.withMutPtr { a in dB.withMutPtr { c in dX.withMutPtr { d in
                linearBackward(px, batch: b, inFeatures: fin, outFeatures: fout, weight: pw, outGrad: pg,
                               weightGrad: a, biasGrad: c, inputGrad: d, threads: 2, gemmWorkspace: ws)
            } } }
            rW.withMutPtr { a in rB.withMutPtr { c in rX.withMutPtr { d in
                linearBackwardReference(px, batch: b, inFeatures: fin, outFeatures: fout, weight: pw, outGrad: pg,
                                        weightGrad: a, biasGrad: c, inputGrad: d)
            } } }
        } } } }
        assertClose(y, ry, tol: 1e-4, "linear forward")
        assertClose(dW, rW, tol: 1e-4, "linear dW")
        assertClose(dB, rB, tol: 1e-5, "linear dB")
        assertClose(dX, rX, tol: 1e-4, "linear dX")
    }

    func testBackwardMatchesFiniteDifferences() {
        let (b, fin, fout) = (2, 3, 2)
        var x = randomFloats(b * fin, seed: 45), w = randomFloats(fout * fin, seed: 46)
        var bias = randomFloats(fout, seed: 47)
        let dy = randomFloats(b * fout, seed: 48)
        func loss(_ x: [Float], _ w: [Float], _ bias: [Float]) -> Double {
            var y = [Float](repeating: 0, count: b * fout)
            x.withPtr { px in w.withPtr { pw in bias.withPtr { pb in y.withMutPtr {
                linearForwardReference(px, batch: b, inFeatures: fin, outFeatures: fout, weight: pw, bias: pb, output: $0)
            } } } }
            return weightedSum(y, dy)
        }
        var dW = [Float](repeating: 0, count: fout * fin), dB = [Float](repeating: 0, count: fout)
        var dX = [Float](repeating: 0, count: b * fin)
        x.withPtr { px in w.withPtr { pw in dy.withPtr { pg in dW.withMutPtr { a in dB.withMutPtr { c in
            dX.withMutPtr { d in linearBackwardReference(px, batch: b, inFeatures: fin, outFeatures: fout, weight: pw,
                                                         outGrad: pg, weightGrad: a, biasGrad: c, inputGrad: d) }
        } } } } }
        for i in 0..<x.count { XCTAssertEqual(Double(dX[i]), finiteDifference(&x, i) { loss($0, w, bias) }, accuracy: 1e-3) }
        for i in 0..<w.count { XCTAssertEqual(Double(dW[i]), finiteDifference(&w, i) { loss(x, $0, bias) }, accuracy: 1e-3) }
        for i in 0..<fout { XCTAssertEqual(Double(dB[i]), finiteDifference(&bias, i) { loss(x, w, $0) }, accuracy: 1e-3) }
    }
}
