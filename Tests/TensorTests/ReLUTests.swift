import XCTest
@testable import Tensor

/// ReLU forward/backward against the scalar reference (lengths not multiples of 8) and by finite differences.
final class ReLUTests: XCTestCase {
    func testMatchesReferenceOnOddLengths() {
        for count in [1, 7, 9, 70_001] {
            let x = randomFloats(count, seed: UInt64(count))
            var y = [Float](repeating: 0, count: count), r = y
            x.withPtr { px in
                y.withMutPtr { reluForward(px, $0, count: count) }
                r.withMutPtr { reluForwardReference(px, $0, count: count) }
            }
            XCTAssertEqual(y, r, "relu forward, \(count) floats")
            var g = randomFloats(count, seed: 5), rg = g
            y.withPtr { py in
                g.withMutPtr { reluBackward($0, output: py, count: count, threads: 2) }
                rg.withMutPtr { reluBackwardReference($0, output: py, count: count) }
            }
            XCTAssertEqual(g, rg, "relu backward, \(count) floats")
        }
    }

    func testBackwardMatchesFiniteDifferences() {
        var x: [Float] = [-1.5, -0.2, 0.3, 2.0, 0.7]
        let w: [Float] = [0.5, -1, 2, 3, -0.25]
        var y = [Float](repeating: 0, count: 5)
        x.withPtr { px in y.withMutPtr { reluForward(px, $0, count: 5) } }
        var g = w
        y.withPtr { py in g.withMutPtr { reluBackward($0, output: py, count: 5) } }
        for i in 0..<5 {
            let fd = finiteDifference(&x, i, eps: 1e-3) { v in
                var o = [Float](repeating: 0, count: 5)
                v.withPtr { pv in o.withMutPtr { reluForward(pv, $0, count: 5) } }
                return weightedSum(o, w)
            }
            XCTAssertEqual(Double(g[i]), fd, accuracy: 1e-3, "dx[\(i)]")
        }
    }
}
