import XCTest
@testable import Tensor

/// 2×2 max-pool against the reference (odd sizes: floor mode) and backward by finite differences.
final class MaxPoolTests: XCTestCase {
    func testForwardBackwardMatchReferenceOnOddSizes() {
        for (n, c, h, w, threads) in [(2, 3, 7, 5, 1), (3, 5, 6, 9, 2), (1, 1, 3, 3, 2), (2, 3, 5, 37, 2)] {
            let x = ImageLayout.cnhw(n, c, h, w), y = ImageLayout.cnhw(n, c, h / 2, w / 2)
            let input = randomFloats(x.count, seed: 31), dY = randomFloats(y.count, seed: 32)
            var fast = [Float](repeating: 0, count: y.count), ref = fast
            input.withPtr { pi in
                fast.withMutPtr { po in maxPool2Forward(pi, x, output: po, y, threads: threads) }
                ref.withMutPtr { po in maxPool2ForwardReference(pi, x, output: po, y) }
            }
            XCTAssertEqual(fast, ref, "maxpool forward \(n)x\(c)x\(h)x\(w): exact maxima expected")
            for masked in [false, true] {
                var dX = [Float](repeating: 9, count: x.count), rX = dX
                input.withPtr { pi in fast.withPtr { po in dY.withPtr { pg in
                    dX.withMutPtr { pd in
                        maxPool2Backward(input: pi, x, output: po, outGrad: pg, y, inputGrad: pd, reluMasked: masked,
                                         threads: threads)
                    }
                    rX.withMutPtr { pd in maxPool2BackwardReference(pi, x, outGrad: pg, y, inputGrad: pd, reluMasked: masked) }
                } } }
                XCTAssertEqual(dX, rX, "maxpool backward \(n)x\(c)x\(h)x\(w) masked=\(masked): exact routing expected")
            }
        }
    }

    /// Many ties (inputs drawn from {-1, 0, 1, 2}, including -0) on rows wide enough for the
    /// 8-window SIMD path and its scalar tail: routing must equal the reference exactly.
    func testBackwardTiesOnSIMDAndTailPathsMatchReference() {
        for (n, c, h, w) in [(2, 3, 6, 40), (1, 2, 5, 17), (3, 2, 4, 14)] {
            let x = ImageLayout.cnhw(n, c, h, w), y = ImageLayout.cnhw(n, c, h / 2, w / 2)
            let levels: [Float] = [-1, 0, -0.0, 1, 2]
            let input = randomFloats(x.count, seed: 33).map { levels[Int(($0 + 1) * 2.49) % levels.count] }
            let dY = randomFloats(y.count, seed: 34)
            var out = [Float](repeating: 0, count: y.count)
            input.withPtr { pi in out.withMutPtr { po in maxPool2Forward(pi, x, output: po, y, threads: 1) } }
            for masked in [false, true] {
                var dX = [Float](repeating: 9, count: x.count), rX = dX
                input.withPtr { pi in out.withPtr { po in dY.withPtr { pg in
                    dX.withMutPtr { pd in
                        maxPool2Backward(input: pi, x, output: po, outGrad: pg, y, inputGrad: pd, reluMasked: masked,
                                         threads: 2)
                    }
                    rX.withMutPtr { pd in maxPool2BackwardReference(pi, x, outGrad: pg, y, inputGrad: pd, reluMasked: masked) }
                } } }
                let bad = zip(dX, rX).filter { $0.0 != $0.1 }.count
                XCTAssertEqual(bad, 0, "maxpool backward with ties \(n)x\(c)x\(h)x\(w) masked=\(masked): \(bad) elements differ")
            }
        }
    }

    /// Hand-computed 3×3 → 1×1 window: the dropped row/column gets no gradient; first max wins
    /// ties; with the ReLU mask a window whose max is 0 passes no gradient.
    func testFloorModeTiesAndReLUMask() {
        let x = ImageLayout.nchw(1, 2, 3, 3), y = ImageLayout.nchw(1, 2, 1, 1)
        let input: [Float] = [1, 5, 9, 5, 2, 9, 9, 9, 9, /* channel 1: */ 0, 0, 3, 0, 0, 0, 0, 0, 0]
        var out: [Float] = [0, 0], dX = [Float](repeating: 7, count: 18)
        input.withPtr { pi in out.withMutPtr { po in maxPool2Forward(pi, x, output: po, y, threads: 1) } }
        XCTAssertEqual(out, [5, 0])
        let g: [Float] = [2, 4]
        input.withPtr { pi in out.withPtr { po in g.withPtr { pg in dX.withMutPtr { pd in
            maxPool2Backward(input: pi, x, output: po, outGrad: pg, y, inputGrad: pd, reluMasked: true, threads: 1)
        } } } }
        XCTAssertEqual(dX, [0, 2, 0, 0, 0, 0, 0, 0, 0] + [Float](repeating: 0, count: 9))
        input.withPtr { pi in out.withPtr { po in g.withPtr { pg in dX.withMutPtr { pd in
            maxPool2Backward(input: pi, x, output: po, outGrad: pg, y, inputGrad: pd, reluMasked: false, threads: 1)
        } } } }
        XCTAssertEqual(Array(dX[9...]), [4, 0, 0, 0, 0, 0, 0, 0, 0], "unmasked: first of the tied zeros")
    }

    /// Finite differences of L = Σ dY ⊙ maxpool(X) at distinct inputs (no ties within eps).
    func testBackwardMatchesFiniteDifferences() {
        let x = ImageLayout.nchw(1, 2, 4, 5), y = ImageLayout.nchw(1, 2, 2, 2)
        var input = (0..<x.count).map { Float(($0 * 37) % 41) / 4 }
        let dY = randomFloats(y.count, seed: 33)
        var dX = [Float](repeating: 0, count: x.count)
        input.withPtr { pi in dY.withPtr { pg in dX.withMutPtr { pd in
            maxPool2BackwardReference(pi, x, outGrad: pg, y, inputGrad: pd, reluMasked: false)
        } } }
        for i in 0..<x.count {
            let fd = finiteDifference(&input, i, eps: 1e-3) { v in
                var out = [Float](repeating: 0, count: y.count)
                v.withPtr { pi in out.withMutPtr { po in maxPool2ForwardReference(pi, x, output: po, y) } }
                return weightedSum(out, dY)
            }
            XCTAssertEqual(Double(dX[i]), fd, accuracy: 1e-3, "dX[\(i)]")
        }
    }
}
