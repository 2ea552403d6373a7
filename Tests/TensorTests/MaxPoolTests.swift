import XCTest
@testable import Tensor

/// 2×2 max-pool against the reference (odd sizes: floor mode) and backward by finite differences.
final class MaxPoolTests: XCTestCase {
    func testForwardBackwardMatchReferenceOnOddSizes() {
        for (n, c, h, w, threads) in [(2, 3, 7, 5, 1), (3, 5, 6, 9, 2), (1, 1, 3, 3, 2)] {
            let x = ImageLayout.cnhw(n, c, h, w), y = ImageLayout.cnhw(n, c, h / 2, w / 2)
            let input = randomFloats(x.count, seed: 31), dY = randomFloats(y.count, seed: 32)
            var fast = [Float](repeating: 0, count: y.count), ref = fast
            var arg = [UInt8](repeating: 0, count: y.count)
            var dX = [Float](repeating: 9, count: x.count), rX = dX
            input.withPtr { pi in
                fast.withMutPtr { po in arg.withUnsafeMutableBufferPointer { pa in
                    maxPool2Forward(pi, x, output: po, y, argmax: pa.baseAddress!, threads: threads)
                } }
                ref.withMutPtr { po in maxPool2ForwardReference(pi, x, output: po, y) }
                dY.withPtr { pg in
                    dX.withMutPtr { pd in arg.withUnsafeBufferPointer { pa in
                        maxPool2Backward(pg, y, argmax: pa.baseAddress!, inputGrad: pd, x, threads: threads)
                    } }
                    rX.withMutPtr { pd in maxPool2BackwardReference(pi, x, outGrad: pg, y, inputGrad: pd) }
                }
            }
            XCTAssertEqual(fast, ref, "maxpool forward \(n)x\(c)x\(h)x\(w): exact maxima expected")
            XCTAssertEqual(dX, rX, "maxpool backward \(n)x\(c)x\(h)x\(w): exact routing expected")
        }
    }

    /// Hand-computed 3×3 → 1×1 window: the dropped row/column gets no gradient; first max wins ties.
    func testFloorModeAndTies() {
        let x = ImageLayout.nchw(1, 1, 3, 3), y = ImageLayout.nchw(1, 1, 1, 1)
        let input: [Float] = [1, 5, 9, 5, 2, 9, 9, 9, 9]
        var out: [Float] = [0], arg: [UInt8] = [0], dX = [Float](repeating: 7, count: 9)
        input.withPtr { pi in out.withMutPtr { po in arg.withUnsafeMutableBufferPointer { pa in
            maxPool2Forward(pi, x, output: po, y, argmax: pa.baseAddress!, threads: 1)
        } } }
        XCTAssertEqual(out, [5]); XCTAssertEqual(arg, [1])
        let g: [Float] = [2]
        g.withPtr { pg in dX.withMutPtr { pd in arg.withUnsafeBufferPointer { pa in
            maxPool2Backward(pg, y, argmax: pa.baseAddress!, inputGrad: pd, x, threads: 1)
        } } }
        XCTAssertEqual(dX, [0, 2, 0, 0, 0, 0, 0, 0, 0])
    }

    /// Finite differences of L = Σ dY ⊙ maxpool(X) at distinct inputs (no ties within eps).
    func testBackwardMatchesFiniteDifferences() {
        let x = ImageLayout.nchw(1, 2, 4, 5), y = ImageLayout.nchw(1, 2, 2, 2)
        var input = (0..<x.count).map { Float(($0 * 37) % 41) / 4 }
        let dY = randomFloats(y.count, seed: 33)
        var dX = [Float](repeating: 0, count: x.count)
        input.withPtr { pi in dY.withPtr { pg in dX.withMutPtr { pd in
            maxPool2BackwardReference(pi, x, outGrad: pg, y, inputGrad: pd)
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
