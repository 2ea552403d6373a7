import XCTest
@testable import Tensor

/// Softmax cross-entropy against the Double reference, a hand-computed value, and finite differences.
final class SoftmaxCrossEntropyTests: XCTestCase {
    func testHandComputedValue() {
        // Two classes, logits (0, ln 3): p = (1/4, 3/4); label 0 → loss = ln 4.
        let z: [Float] = [0, Float(log(3.0))], y: [Int32] = [0]
        let r = z.withPtr { pz in y.withUnsafeBufferPointer {
            softmaxCrossEntropy(pz, labels: $0.baseAddress!, batch: 1, classes: 2, logitsGrad: nil)
        } }
        XCTAssertEqual(r.loss, log(4.0), accuracy: 1e-6)
        XCTAssertEqual(r.correct, 0)
    }

    func testMatchesReferenceAndFiniteDifferences() {
        let (b, k) = (5, 7)
        var z = randomFloats(b * k, seed: 51).map { $0 * 4 }
        let y: [Int32] = [0, 6, 3, 3, 1]
        var g = [Float](repeating: 0, count: b * k), rg = g
        let (fast, ref) = z.withPtr { pz in y.withUnsafeBufferPointer { py in
            (g.withMutPtr { softmaxCrossEntropy(pz, labels: py.baseAddress!, batch: b, classes: k, logitsGrad: $0) },
             rg.withMutPtr { softmaxCrossEntropyReference(pz, labels: py.baseAddress!, batch: b, classes: k, logitsGrad: $0) })
        } }
        XCTAssertEqual(fast.loss, ref.loss, accuracy: 1e-5)
        XCTAssertEqual(fast.correct, ref.correct)
        assertClose(g, rg, tol: 1e-6, "softmax-CE gradient")
        for i in [0, 8, 20, 34] {
            let fd = finiteDifference(&z, i, eps: 1e-3) { v in
                v.withPtr { pz in y.withUnsafeBufferPointer {
                    softmaxCrossEntropyReference(pz, labels: $0.baseAddress!, batch: b, classes: k, logitsGrad: nil).loss
                } }
            }
            XCTAssertEqual(Double(g[i]), fd, accuracy: 1e-3, "dz[\(i)]")
        }
    }
}
