import XCTest
@testable import CNNModel
@testable import Tensor

/// Deterministic images in [0, 1) and labels in 0..<classes.
func syntheticBatch(count: Int, c: Int, h: Int, w: Int, classes: Int, seed: UInt64) -> ([Float], [Int32]) {
    var rng = SplitMix64(seed: seed)
    let x = (0..<count * c * h * w).map { _ in Float.random(in: 0..<1, using: &rng) }
    let y = (0..<count).map { _ in Int32.random(in: 0..<Int32(classes), using: &rng) }
    return (x, y)
}

/// Construction, layout, parameter round trips, seeding and input validation.
final class CNNTests: XCTestCase {
    func testParameterCountsMatchPyTorch() throws {
        XCTAssertEqual(try CNN(channels: 1, height: 28, width: 28, classes: 10, seed: 1).parameterCount, 390_410)
        XCTAssertEqual(try CNN(channels: 3, height: 32, width: 32, classes: 10, seed: 1).parameterCount, 398_666)
    }

    func testLayoutNamesShapesAndOrder() throws {
        let m = try CNN(channels: 3, height: 32, width: 32, classes: 10, seed: 1)
        let expected: [(String, [Int])] = [
            ("conv1.weight", [32, 3, 3, 3]), ("conv1.bias", [32]), ("conv2.weight", [64, 32, 3, 3]), ("conv2.bias", [64]),
            ("conv3.weight", [128, 64, 3, 3]), ("conv3.bias", [128]), ("conv4.weight", [256, 128, 3, 3]),
            ("conv4.bias", [256]), ("fc.weight", [10, 1024]), ("fc.bias", [10]),
        ]
        XCTAssertEqual(m.layout.map(\.name), expected.map(\.0))
        XCTAssertEqual(m.layout.map(\.shape), expected.map(\.1))
        var offset = 0
        for e in m.parameterEntries { XCTAssertEqual(e.offset, offset, e.name); offset += e.count }
        XCTAssertEqual(offset, m.parameterCount)
    }

    func testInitialisationIsSeededAndWithinPyTorchBounds() throws {
        let a = try CNN(channels: 1, height: 28, width: 28, classes: 10, seed: 7)
        let b = try CNN(channels: 1, height: 28, width: 28, classes: 10, seed: 7)
        let c = try CNN(channels: 1, height: 28, width: 28, classes: 10, seed: 8)
        XCTAssertEqual(a.parameters(), b.parameters(), "same seed, same parameters")
        XCTAssertNotEqual(a.parameters(), c.parameters(), "different seed, different parameters")
        let p = a.parameters()
        for e in a.parameterEntries {
            let fanIn = e.name.hasPrefix("fc") ? 256 : e.name == "conv1.weight" || e.name == "conv1.bias" ? 9
                : [64: 288, 128: 576, 256: 1152][e.shape[0]] ?? 0
            let bound = 1 / Float(fanIn).squareRoot()
            let slice = p[e.offset..<(e.offset + e.count)]
            XCTAssertLessThanOrEqual(slice.map(abs).max() ?? 0, bound, e.name)
            XCTAssertGreaterThan(slice.map(abs).max() ?? 0, bound * 0.8, "\(e.name) should fill U(±\(bound))")
        }
    }

    func testParametersRoundTripByName() throws {
        let a = try CNN(channels: 1, height: 16, width: 20, classes: 3, seed: 1)
        let b = try CNN(channels: 1, height: 16, width: 20, classes: 3, seed: 2)
        // Rebuild b's flat buffer tensor by tensor, by name, from a's.
        let pa = a.parameters()
        var byName: [String: ArraySlice<Float>] = [:]
        for e in a.parameterEntries { byName[e.name] = pa[e.offset..<(e.offset + e.count)] }
        var flat: [Float] = []
        for e in b.parameterEntries { flat += byName[e.name] ?? [] }
        try b.setParameters(flat)
        XCTAssertEqual(b.parameters(), pa)
        b.withParameters { XCTAssertEqual(Array($0), pa) }
        XCTAssertThrowsError(try b.setParameters([1, 2, 3])) { error in
            XCTAssertEqual(error as? CNNError, .parameterCountMismatch(expected: b.parameterCount, got: 3))
            XCTAssertTrue("\(error)".contains("\(b.parameterCount)"))
        }
    }

    func testRejectsBadInputs() throws {
        XCTAssertThrowsError(try CNN(channels: 1, height: 15, width: 28, classes: 10, seed: 1)) {
            XCTAssertEqual($0 as? CNNError, .inputTooSmall(channels: 1, height: 15, width: 28))
        }
        XCTAssertThrowsError(try CNN(channels: 1, height: 28, width: 28, classes: 0, seed: 1))
        let m = try CNN(channels: 1, height: 16, width: 16, classes: 3, seed: 1, threads: 1)
        let (x, _) = syntheticBatch(count: 2, c: 1, h: 16, w: 16, classes: 3, seed: 1)
        let bad: [Int32] = [0, 3]
        XCTAssertThrowsError(try x.withUnsafeBufferPointer { xs in try bad.withUnsafeBufferPointer {
            try m.train(images: xs, labels: $0, epochs: 1, batchSize: 2, sgd: SGDConfig(), seed: 1)
        } }) { XCTAssertEqual($0 as? CNNError, .labelOutOfRange(index: 1, label: 3, classes: 3)) }
        XCTAssertThrowsError(try x.withUnsafeBufferPointer { try m.logits(images: $0, count: 3) })
    }
}

/// Whole-network checks that need release-mode speed.
final class CNNReleaseTests: XCTestCase {
    override func setUpWithError() throws {
        #if DEBUG
        throw XCTSkip("release-only: run swift test -c release --filter ReleaseTests")
        #endif
    }

    /// The analytic gradient of the whole CNN (forward + backward) against central finite
    /// differences of the mean loss, on a tiny input, for a sample of every parameter tensor.
    func testWholeNetworkGradientMatchesFiniteDifferences() throws {
        let (n, c, h, w, k) = (2, 2, 16, 17, 3)
        let m = try CNN(channels: c, height: h, width: w, classes: k, seed: 3, threads: 2)
        let (x, y) = syntheticBatch(count: n, c: c, h: h, w: w, classes: k, seed: 4)
        let ws = m.workspace(for: n)
        func loss() -> Double {
            x.withUnsafeBufferPointer { xs in
                m.forward(xs.baseAddress!, n: n, ws: ws)
                return y.withUnsafeBufferPointer {
                    softmaxCrossEntropyReference(ws.logits.pointer, labels: $0.baseAddress!, batch: n, classes: k,
                                                 logitsGrad: nil).loss
                }
            }
        }
        x.withUnsafeBufferPointer { xs in y.withUnsafeBufferPointer { ys in
            m.forward(xs.baseAddress!, n: n, ws: ws)
            _ = m.backward(xs.baseAddress!, labels: ys.baseAddress!, n: n, ws: ws)
        } }
        let grads = Array(UnsafeBufferPointer(start: m.grads, count: m.parameterCount))
        // Central differences at eps and eps/2: where they disagree, a ReLU or max-pool kink lies
        // within eps (the loss is not smooth there) and that entry is skipped; most must be smooth.
        func fd(_ i: Int, _ eps: Float) -> Double {
            let saved = m.params[i]
            m.params[i] = saved + eps; let up = loss()
            m.params[i] = saved - eps; let down = loss()
            m.params[i] = saved
            return (up - down) / (2 * Double(eps))
        }
        var checked = 0, smooth = 0
        for e in m.parameterEntries {
            for j in [0, e.count / 2, e.count - 1] {
                let i = e.offset + j, g = Double(grads[i])
                let d1 = fd(i, 2e-3), d2 = fd(i, 1e-3)
                checked += 1
                guard abs(d1 - d2) <= 0.02 * abs(d1) + 2e-4 else { continue }
                smooth += 1
                XCTAssertEqual(g, d2, accuracy: 0.03 * abs(d2) + 2e-4,
                               "\(e.name)[\(j)]: analytic \(g) vs finite difference \(d2)")
            }
        }
        XCTAssertEqual(checked, 30)
        XCTAssertGreaterThanOrEqual(smooth, 24, "too many entries next to a kink to check the gradient")
    }
}
