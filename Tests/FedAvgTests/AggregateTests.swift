import Foundation
import FedAvg
import FlowerCore
import XCTest

/// Expectations of Flower's flwr/server/strategy/aggregate_test.py, plus hand-computed cases.
final class AggregateTests: XCTestCase {
    private func params(_ v: [Float]) throws -> Parameters {
        try Parameters(shapes: [("w", [2, 3]), ("b", [4])], values: v)
    }

    /// Flower's test_aggregate: two clients with identical weights (n = 1 and 2) average to the same weights.
    func testIdenticalUpdatesAverageToThemselves() throws {
        let w = try params([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
        let avg = try XCTUnwrap(try aggregate([(w, 1), (w, 2)]))
        XCTAssertEqual(avg, w)
    }

    /// Hand-computed: (1·[1..10] + 3·[10..1]) / 4 = [7.75, 7.25, ..., 3.25].
    func testUnequalWeightsGiveTheHandComputedAverage() throws {
        let up = try params((1 ... 10).map(Float.init))
        let down = try params((1 ... 10).reversed().map(Float.init))
        let avg = try XCTUnwrap(try aggregate([(up, 1), (down, 3)]))
        let expected: [Float] = (0 ..< 10).map { i in (Float(i + 1) + 3 * Float(10 - i)) / 4 }
        XCTAssertEqual(avg.values, expected)
        XCTAssertEqual(expected[0], 7.75)
        XCTAssertEqual(avg.layout, up.layout)
    }

    /// Streaming (one update at a time) gives the same model as the list function, whatever the order.
    func testStreamingEqualsListAggregationInAnyOrder() throws {
        let updates: [(Parameters, Int)] = try (0 ..< 5).map { k in
            (try params((0 ..< 10).map { Float(($0 * 7 + k * 3) % 11) - 5 }), k + 1)
        }
        let list = try XCTUnwrap(try aggregate(updates))
        var stream = WeightedAverage(template: updates[0].0)
        for (p, n) in updates.reversed() { try stream.add(p, numExamples: n) }
        XCTAssertEqual(stream.count, 5)
        XCTAssertEqual(stream.totalExamples, 15)
        let streamed = try XCTUnwrap(stream.average())
        for (a, b) in zip(streamed.values, list.values) { XCTAssertEqual(a, b, accuracy: 1e-6) }
        // Reference in Double: Σ nᵢ xᵢ / Σ nᵢ per element.
        for i in 0 ..< 10 {
            let ref = updates.reduce(0.0) { $0 + Double($1.1) * Double($1.0.values[i]) } / 15
            XCTAssertEqual(Double(list.values[i]), ref, accuracy: 1e-6, "element \(i)")
        }
    }

    func testEmptyListHasNoAverage() throws {
        XCTAssertNil(try aggregate([]))
        XCTAssertNil(WeightedAverage(template: try params([Float](repeating: 0, count: 10))).average())
    }

    /// Flower's test_weighted_loss_avg_single_value and _multiple_values.
    func testWeightedLossAverage() {
        XCTAssertEqual(weightedLossAvg([(5, 0.5)]), 0.5)
        XCTAssertEqual(weightedLossAvg([(1, 2.0), (2, 1.0), (1, 2.0)]), 1.5)
        XCTAssertNil(weightedLossAvg([]))
    }

    func testMetricsAreAveragedByExamplesOverTheResultsReportingThem() {
        let m = weightedMetricsAvg([
            (1, ["accuracy": .double(0.5), "name": .string("a")]),
            (3, ["accuracy": .double(0.9), "steps": .int(10)]),
        ])
        XCTAssertEqual(m["accuracy"]?.doubleValue ?? .nan, (0.5 + 2.7) / 4, accuracy: 1e-12)
        XCTAssertEqual(m["steps"], .double(10))
        XCTAssertNil(m["name"])
    }

    func testBadUpdatesAreRejectedWithReasonsAndLeaveTheSumUntouched() throws {
        let good = try params((1 ... 10).map(Float.init))
        var avg = WeightedAverage(template: good)
        try avg.add(good, numExamples: 2)

        var nan = good
        nan.values[7] = .nan
        XCTAssertThrowsError(try avg.add(nan, numExamples: 1)) {
            XCTAssertEqual($0 as? UpdateRejection, .nonFinite(tensor: "b", index: 7))
            XCTAssertTrue("\($0)".contains("non-finite value in b"), "\($0)")
        }
        var inf = good
        inf.values[0] = .infinity
        XCTAssertThrowsError(try avg.add(inf, numExamples: 1)) {
            XCTAssertEqual($0 as? UpdateRejection, .nonFinite(tensor: "w", index: 0))
        }
        let reshaped = try Parameters(shapes: [("w", [3, 2]), ("b", [4])], values: good.values)
        XCTAssertThrowsError(try avg.add(reshaped, numExamples: 1)) {
            XCTAssertEqual($0 as? UpdateRejection, .layoutMismatch("tensor w [3, 2] where w [2, 3] was expected"))
        }
        let renamed = try Parameters(shapes: [("w", [2, 3]), ("bias", [4])], values: good.values)
        XCTAssertThrowsError(try avg.add(renamed, numExamples: 1)) {
            guard case .layoutMismatch(let s) = $0 as? UpdateRejection else { return XCTFail("\($0)") }
            XCTAssertTrue(s.contains("bias"), s)
        }
        XCTAssertThrowsError(try avg.add(good, numExamples: 0)) {
            XCTAssertEqual($0 as? UpdateRejection, .nonPositiveExamples(0))
        }
        XCTAssertEqual(avg.count, 1)
        XCTAssertEqual(avg.average(), good, "rejected updates must not change the average")
    }
    /// The fused add (norm measured in the add's own pass) gives the same sum as `add` and the
    /// same norm as `updateNorm` (to rounding: it sums in eight lanes); hand-computed on a small case.
    func testAddMeasuringTheNormMatchesUpdateNormAndTheSeparateAdd() throws {
        let global = try params([1, 1, 1, 1, 1, 1, 1, 1, 1, 1])
        // ‖u − g‖ = ‖(2, 0, …, 0, 3)‖ = √13.
        let small = try params([3, 1, 1, 1, 1, 1, 1, 1, 1, 4])
        var fused = WeightedAverage(template: global)
        let n1 = try fused.add(small, numExamples: 2, measuringFrom: global)
        XCTAssertEqual(try XCTUnwrap(n1), 13.0.squareRoot())
        var separate = WeightedAverage(template: global)
        try separate.add(small, numExamples: 2)
        // Values of mixed sign and magnitude (1e-3 … 1e3), 10 per update: 8 lanes and a tail.
        func value(_ i: Int, _ k: Int) -> Float {
            let wave: Double = sin(Double(i * 13 + k * 7))
            let scale: Double = pow(10.0, Double((i + k) % 7 - 3))
            return Float(wave * scale)
        }
        var many: [Parameters] = []
        for k in 0 ..< 6 { many.append(try params((0 ..< 10).map { value($0, k) })) }
        for (k, u) in many.enumerated() {
            let norm = try fused.add(u, numExamples: k + 1, measuringFrom: global)
            let reference = try XCTUnwrap(updateNorm(u, from: global))
            XCTAssertEqual(try XCTUnwrap(norm), reference, accuracy: reference * 1e-14, "update \(k)")
            try separate.add(u, numExamples: k + 1)
        }
        XCTAssertEqual(fused.count, separate.count)
        XCTAssertEqual(fused.totalExamples, 2 + 21)
        XCTAssertEqual(fused.average(), separate.average())
        // A global model of another layout: the update is still added, with no norm.
        let other = try Parameters(shapes: [("w", [10])], values: global.values)
        XCTAssertNil(try fused.add(small, numExamples: 1, measuringFrom: other))
        try separate.add(small, numExamples: 1)
        XCTAssertEqual(fused.average(), separate.average())
    }

    /// A rejected update leaves the fused average untouched, with the same reasons as `add`.
    func testFusedAddRejectsLikeAddAndLeavesTheSumUntouched() throws {
        let good = try params((1 ... 10).map(Float.init))
        var avg = WeightedAverage(template: good)
        XCTAssertEqual(try avg.add(good, numExamples: 2, measuringFrom: good), 0)
        var nan = good
        nan.values[9] = .nan
        XCTAssertThrowsError(try avg.add(nan, numExamples: 1, measuringFrom: good)) {
            XCTAssertEqual($0 as? UpdateRejection, .nonFinite(tensor: "b", index: 9))
        }
        var inf = good
        inf.values[2] = -.infinity
        XCTAssertThrowsError(try avg.add(inf, numExamples: 1, measuringFrom: good)) {
            XCTAssertEqual($0 as? UpdateRejection, .nonFinite(tensor: "w", index: 2))
        }
        XCTAssertThrowsError(try avg.add(good, numExamples: -1, measuringFrom: good)) {
            XCTAssertEqual($0 as? UpdateRejection, .nonPositiveExamples(-1))
        }
        XCTAssertEqual(avg.count, 1)
        XCTAssertEqual(avg.average(), good)
    }
}
