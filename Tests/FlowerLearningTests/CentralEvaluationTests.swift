import CIFARLoader
import CNNModel
import FlowerCore
@testable import FlowerLearning
import Logging
import XCTest

final class CentralEvaluationTests: XCTestCase {
    /// Sharding the test set over several single-threaded models changes nothing but the speed:
    /// the same accuracy (hits are counted) and the same mean loss (to rounding) as one model
    /// evaluating everything, for shard counts that do and do not divide the set.
    func testShardedEvaluationEqualsOneModelOverTheWholeSet() async throws {
        var rng = SplitMix64(seed: 7)
        let count = 23
        let bytes = (0 ..< count * 16 * 16).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let labels = (0 ..< count).map { _ in Int32(rng.next() % 3) }
        let test = Dataset(bytes: bytes, labels: labels, channels: 1, height: 16, width: 16, classes: 3, name: "synthetic")
        let logger = Logger(label: "test")

        let reference = try referenceCNN(channels: 1, height: 16, width: 16, classes: 3, seed: 5, threads: 1)
        let images = modelInput(test)
        let expected = try images.withUnsafeBufferPointer { ib in
            try labels.withUnsafeBufferPointer { lb in try reference.evaluate(images: ib, labels: lb) }
        }
        let parameters = try Parameters(shapes: reference.layout, values: reference.parameters())
        XCTAssert(expected.accuracy > 0 && expected.accuracy < 1, "a degenerate set would not test the sum")
        for shards in [2, 3] {
            let evaluation = try CentralEvaluation(test: test, model: .reference, threads: shards, seed: 5, logger: logger)
            XCTAssertEqual(evaluation.initialParameters.values, parameters.values, "seeded initial model")
            let evaluate = try XCTUnwrap(evaluation.evaluateFn)
            let result = try await evaluate(1, parameters)
            let got = try XCTUnwrap(result)
            XCTAssertEqual(got.metrics["accuracy"]?.doubleValue, expected.accuracy, "\(shards) shards")
            XCTAssertEqual(got.loss, expected.loss, accuracy: 1e-9 * max(1, expected.loss), "\(shards) shards")
        }
    }
}
