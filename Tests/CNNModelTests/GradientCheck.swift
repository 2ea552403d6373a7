import XCTest
@testable import CNNModel
@testable import Tensor

/// Compares a network's analytic gradient (forward + backward) with central finite differences
/// of the mean loss (in Double, reference cross-entropy) for 3 entries of every parameter tensor;
/// entries where differences at eps and eps/2 disagree sit next to a ReLU/max kink and are
/// skipped. Returns (checked, smooth) counts.
func checkNetworkGradient(_ m: Network, n: Int, seed: UInt64, file: StaticString = #filePath,
                          line: UInt = #line) throws -> (Int, Int) {
    let (x, y) = syntheticBatch(count: n, c: 1, h: 1, w: m.inputShape.count, classes: m.classes, seed: seed)
    let ws = m.workspace(for: n)
    func loss() -> Double {
        x.withUnsafeBufferPointer { xs in
            let z = m.forward(xs.baseAddress!, n: n, training: false, ws: ws)
            return y.withUnsafeBufferPointer {
                softmaxCrossEntropyReference(z, labels: $0.baseAddress!, batch: n, classes: m.classes, logitsGrad: nil).loss
            }
        }
    }
    x.withUnsafeBufferPointer { xs in y.withUnsafeBufferPointer { ys in
        _ = m.forward(xs.baseAddress!, n: n, training: false, ws: ws)
        _ = m.backward(labels: ys.baseAddress!, n: n, ws: ws)
    } }
    let grads = Array(UnsafeBufferPointer(start: m.grads, count: m.parameterCount))
    func fd(_ i: Int, _ eps: Float) -> Double {
        let saved = m.params[i]
        m.params[i] = saved + eps; let up = loss()
        m.params[i] = saved - eps; let down = loss()
        m.params[i] = saved
        return (up - down) / (2 * Double(eps))
    }
    var checked = 0, smooth = 0
    for e in m.parameterEntries {
        for j in Set([0, e.count / 2, e.count - 1]).sorted() {
            let i = e.offset + j, g = Double(grads[i])
            let d1 = fd(i, 2e-3), d2 = fd(i, 1e-3)
            checked += 1
            guard abs(d1 - d2) <= 0.02 * abs(d1) + 2e-4 else { continue }
            smooth += 1
            XCTAssertEqual(g, d2, accuracy: 0.03 * abs(d2) + 2e-4,
                           "\(e.name)[\(j)]: analytic \(g) vs finite difference \(d2)", file: file, line: line)
        }
    }
    return (checked, smooth)
}
