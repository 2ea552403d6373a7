import XCTest
@testable import Tensor

/// SGD step against the scalar reference and a hand-computed PyTorch-style sequence.
final class SGDTests: XCTestCase {
    func testMatchesReferenceOnOddLength() {
        let n = 21
        var w = randomFloats(n, seed: 61), v = randomFloats(n, seed: 62)
        var rw = w, rv = v
        let g = randomFloats(n, seed: 63)
        for (m, wd) in [(Float(0.9), Float(0.01)), (0, 0)] {
            g.withPtr { pg in
                w.withMutPtr { pw in v.withMutPtr { sgdStep(pw, grads: pg, velocity: $0, count: n, learningRate: 0.1,
                                                            momentum: m, weightDecay: wd) } }
                rw.withMutPtr { pw in rv.withMutPtr { sgdStepReference(pw, grads: pg, velocity: $0, count: n,
                                                                       learningRate: 0.1, momentum: m, weightDecay: wd) } }
            }
            assertClose(w, rw, tol: 1e-6, "sgd weights m=\(m)")
            assertClose(v, rv, tol: 1e-6, "sgd velocity m=\(m)")
        }
    }

    /// w=1, g=1 each step, lr 0.1, momentum 0.5: v = 1, 1.5 → w = 0.9, 0.75 (torch.optim.SGD).
    func testHandComputedMomentum() {
        var w: [Float] = [1], v: [Float] = [0]
        let g: [Float] = [1]
        for expected: Float in [0.9, 0.75] {
            g.withPtr { pg in w.withMutPtr { pw in v.withMutPtr {
                sgdStep(pw, grads: pg, velocity: $0, count: 1, learningRate: 0.1, momentum: 0.5, weightDecay: 0)
            } } }
            XCTAssertEqual(w[0], expected, accuracy: 1e-6)
        }
    }
}
