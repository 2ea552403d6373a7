import XCTest
@testable import Tensor

/// conv2d forward/backward (implicit-im2col GEMMs) against the direct-loop reference, and
/// backward against central finite differences.
struct ConvCase { let n, cin, cout, h, w: Int; let nchw: Bool }

/// Fast conv forward/backward vs the reference for one case.
func checkConv(_ c: ConvCase, threads: Int, level: KernelLevel = .detected) throws {
        let s = Conv2dShape(inChannels: c.cin, outChannels: c.cout)
        let x = c.nchw ? ImageLayout.nchw(c.n, c.cin, c.h, c.w) : ImageLayout.cnhw(c.n, c.cin, c.h, c.w)
        let input = randomFloats(x.count, seed: 11), weight = randomFloats(s.weightCount, seed: 12)
        let bias = randomFloats(c.cout, seed: 13), q = c.n * c.h * c.w
        let dY = randomFloats(c.cout * q, seed: 14)
        var fast = [Float](repeating: 0, count: c.cout * q), ref = fast
        let ws = try GEMMWorkspace(threads: threads, level: level)
        for relu in [false, true] {
            input.withPtr { pi in weight.withPtr { pw in bias.withPtr { pb in
                fast.withMutPtr { po in
                    conv2dForward(pi, x, s, weight: pw, bias: pb, output: po, relu: relu, threads: threads,
                                  gemmWorkspace: ws)
                }
                ref.withMutPtr { po in conv2dForwardReference(pi, x, s, weight: pw, bias: pb, output: po, relu: relu) }
            } } }
            assertClose(fast, ref, tol: 1e-4, "conv forward \(c) relu=\(relu) level=\(level) threads=\(threads)")
        }
        var dW = [Float](repeating: 0, count: s.weightCount), dB = [Float](repeating: 0, count: c.cout)
        var dX = [Float](repeating: 0, count: x.count)
        var rW = dW, rB = dB, rX = dX
        input.withPtr { pi in weight.withPtr { pw in dY.withPtr { pg in
            dW.withMutPtr { a in dB.withMutPtr { b in dX.withMutPtr { d in
                conv2dBackward(pi, x, s, weight: pw, outGrad: pg, weightGrad: a, biasGrad: b, inputGrad: d,
                               threads: threads, gemmWorkspace: ws)
            } } }
            rW.withMutPtr { a in rB.withMutPtr { b in rX.withMutPtr { d in
                conv2dBackwardReference(pi, x, s, weight: pw, outGrad: pg, weightGrad: a, biasGrad: b, inputGrad: d)
            } } }
        } } }
        assertClose(dW, rW, tol: 1e-3, "conv dW \(c) level=\(level) threads=\(threads)")
        assertClose(dB, rB, tol: 1e-4, "conv dB \(c)")
        assertClose(dX, rX, tol: 1e-4, "conv dX \(c) level=\(level) threads=\(threads)")
}

final class Conv2dTests: XCTestCase {
    /// Odd sizes and channel counts that are not multiples of any tile, both layouts, 1 and 2 threads.
    func testFastMatchesReferenceOnOddShapes() throws {
        try checkConv(ConvCase(n: 2, cin: 3, cout: 5, h: 7, w: 5, nchw: true), threads: 1)
        try checkConv(ConvCase(n: 3, cin: 2, cout: 9, h: 5, w: 6, nchw: false), threads: 2)
        try checkConv(ConvCase(n: 1, cin: 1, cout: 1, h: 1, w: 1, nchw: true), threads: 2)
        for level in KernelLevel.supported {
            try checkConv(ConvCase(n: 2, cin: 2, cout: 3, h: 3, w: 2, nchw: false), threads: 1, level: level)
        }
    }

    /// The reference backward against finite differences of L = Σ dY ⊙ conv(X) (Double).
    func testBackwardMatchesFiniteDifferences() throws {
        let n = 2, cin = 2, cout = 3, h = 4, w = 3
        let s = Conv2dShape(inChannels: cin, outChannels: cout)
        let x = ImageLayout.nchw(n, cin, h, w), q = n * h * w
        var input = randomFloats(x.count, seed: 21), weight = randomFloats(s.weightCount, seed: 22)
        var bias = randomFloats(cout, seed: 23)
        let dY = randomFloats(cout * q, seed: 24)
        func loss(_ i: [Float], _ wt: [Float], _ b: [Float]) -> Double {
            var y = [Float](repeating: 0, count: cout * q)
            i.withPtr { pi in wt.withPtr { pw in b.withPtr { pb in y.withMutPtr { po in
                conv2dForwardReference(pi, x, s, weight: pw, bias: pb, output: po, relu: false)
            } } } }
            return weightedSum(y, dY)
        }
        var dW = [Float](repeating: 0, count: s.weightCount), dB = [Float](repeating: 0, count: cout)
        var dX = [Float](repeating: 0, count: x.count)
        input.withPtr { pi in weight.withPtr { pw in dY.withPtr { pg in dW.withMutPtr { a in dB.withMutPtr { b in
            dX.withMutPtr { d in conv2dBackwardReference(pi, x, s, weight: pw, outGrad: pg, weightGrad: a, biasGrad: b,
                                                         inputGrad: d) }
        } } } } }
        for i in [0, 5, 17, x.count - 1] {
            let fd = finiteDifference(&input, i) { loss($0, weight, bias) }
            XCTAssertEqual(Double(dX[i]), fd, accuracy: 1e-3, "dX[\(i)]")
        }
        for i in [0, 7, s.weightCount - 1] {
            let fd = finiteDifference(&weight, i) { loss(input, $0, bias) }
            XCTAssertEqual(Double(dW[i]), fd, accuracy: 1e-3, "dW[\(i)]")
        }
        for i in 0..<cout {
            let fd = finiteDifference(&bias, i) { loss(input, weight, $0) }
            XCTAssertEqual(Double(dB[i]), fd, accuracy: 1e-3, "dB[\(i)]")
        }
    }
}

/// The CNN's real conv shapes at every supported kernel level (release only).
final class Conv2dReleaseTests: XCTestCase {
    override func setUpWithError() throws {
        #if DEBUG
        throw XCTSkip("release-only: run swift test -c release --filter ReleaseTests")
        #endif
    }

    func testCNNLayerShapes() throws {
        for level in KernelLevel.supported {
            for threads in [1, 2] {
                try checkConv(ConvCase(n: 3, cin: 32, cout: 64, h: 14, w: 14, nchw: false), threads: threads, level: level)
                try checkConv(ConvCase(n: 2, cin: 128, cout: 256, h: 3, w: 3, nchw: false), threads: threads, level: level)
                try checkConv(ConvCase(n: 4, cin: 3, cout: 32, h: 32, w: 32, nchw: true), threads: threads, level: level)
                try checkConv(ConvCase(n: 5, cin: 64, cout: 128, h: 7, w: 7, nchw: false), threads: threads, level: level)
            }
        }
    }
}
