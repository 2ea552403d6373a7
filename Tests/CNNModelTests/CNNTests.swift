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
        XCTAssertEqual(try referenceCNN(channels: 1, height: 28, width: 28, classes: 10, seed: 1).parameterCount, 390_410)
        XCTAssertEqual(try referenceCNN(channels: 3, height: 32, width: 32, classes: 10, seed: 1).parameterCount, 398_666)
    }

    func testLayoutNamesShapesAndOrder() throws {
        let m = try referenceCNN(channels: 3, height: 32, width: 32, classes: 10, seed: 1)
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
        let a = try referenceCNN(channels: 1, height: 28, width: 28, classes: 10, seed: 7)
        let b = try referenceCNN(channels: 1, height: 28, width: 28, classes: 10, seed: 7)
        let c = try referenceCNN(channels: 1, height: 28, width: 28, classes: 10, seed: 8)
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
        let a = try referenceCNN(channels: 1, height: 16, width: 20, classes: 3, seed: 1)
        let b = try referenceCNN(channels: 1, height: 16, width: 20, classes: 3, seed: 2)
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
        XCTAssertThrowsError(try referenceCNN(channels: 1, height: 15, width: 28, classes: 10, seed: 1)) {
            guard case .inconsistentShape(let layer, _, _)? = $0 as? ModelSpecError else { return XCTFail("\($0)") }
            XCTAssertEqual(layer, "11", "the fourth pool has a zero-sized output for 15 rows")
        }
        XCTAssertThrowsError(try referenceCNN(channels: 1, height: 28, width: 28, classes: 0, seed: 1))
        let m = try referenceCNN(channels: 1, height: 16, width: 16, classes: 3, seed: 1, threads: 1)
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
        let m = try referenceCNN(channels: 2, height: 16, width: 17, classes: 3, seed: 3, threads: 2)
        let (checked, smooth) = try checkNetworkGradient(m, n: 2, seed: 4)
        XCTAssertEqual(checked, 30)
        XCTAssertGreaterThanOrEqual(smooth, 24, "too many entries next to a kink to check the gradient")
    }
}
