import FedAvg
import FlowerCore
import XCTest

/// The reference CNN's size (390,410 values) averaged over 10 clients, checked element by element
/// against a Double reference. Release-only: the debug build is too slow for this shape.
final class AggregateReleaseTests: XCTestCase {
    override func setUpWithError() throws {
        #if DEBUG
        throw XCTSkip("release-only: run swift test -c release --filter ReleaseTests")
        #endif
    }

    func testStreamingAverageOfTenFullSizeModels() throws {
        let count = 390_410
        let shapes: [(name: String, shape: [Int])] = [("conv.weight", [count - 10]), ("fc.bias", [10])]
        var g = SplitMix64(seed: 7)
        let clients: [(Parameters, Int)] = try (0 ..< 10).map { k in
            let v = (0 ..< count).map { _ in Float(Int64(bitPattern: g.next() % 2001) - 1000) / 997 }
            return (try Parameters(shapes: shapes, values: v), 100 * (k + 1))
        }
        var avg = WeightedAverage(template: clients[0].0)
        let clock = ContinuousClock()
        let elapsed = try clock.measure {
            for (p, n) in clients { try avg.add(p, numExamples: n) }
        }
        let result = try XCTUnwrap(avg.average())
        let total = Double(clients.reduce(0) { $0 + $1.1 })
        var worst = 0.0
        for i in stride(from: 0, to: count, by: 1) {
            var ref = 0.0
            for (p, n) in clients { ref += Double(n) * Double(p.values[i]) }
            worst = max(worst, abs(Double(result.values[i]) - ref / total))
        }
        XCTAssertLessThan(worst, 1e-6, "max |streamed - Double reference|")
        print("streaming FedAvg: 10 × \(count) values folded in \(elapsed) (validation included)")
    }
}
