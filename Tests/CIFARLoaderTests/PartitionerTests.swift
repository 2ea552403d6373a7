@testable import CIFARLoader
import TestSupport
import Foundation
import XCTest

final class PartitionerTests: XCTestCase {
    /// 10 classes × 500 samples, labels interleaved.
    let labels: [Int32] = (0 ..< 5000).map { Int32($0 % 10) }

    private func assertExactCover(_ parts: [[Int]], count: Int, file: StaticString = #filePath, line: UInt = #line) {
        var seen = [Int](repeating: 0, count: count)
        for part in parts { for i in part { seen[i] += 1 } }
        XCTAssertEqual(seen.filter { $0 != 1 }.count, 0, "every sample in exactly one partition", file: file, line: line)
    }

    /// P(a, x) against closed forms: P(5, x) = 1 − e^−x Σ_{k<5} x^k/k! (series side at x = 1,
    /// continued-fraction side at x = 10) and P(½, x) = erf(√x).
    func testRegularizedGammaMatchesClosedForms() {
        func integerShape(_ x: Double) -> Double { 1 - exp(-x) * (1 + x + x * x / 2 + pow(x, 3) / 6 + pow(x, 4) / 24) }
        XCTAssertEqual(regularizedGammaP(5, 1), integerShape(1), accuracy: 1e-14)
        XCTAssertEqual(regularizedGammaP(5, 10), integerShape(10), accuracy: 1e-13)
        XCTAssertEqual(regularizedGammaP(0.5, 2), erf(2.0.squareRoot()), accuracy: 1e-13)
        XCTAssertEqual(regularizedGammaP(0.5, 0.01), erf(0.1), accuracy: 1e-14)
        XCTAssertEqual(regularizedGammaP(3, 0), 0)
    }

    /// The Dirichlet limit never exceeds samples / minimum, falls as the minimum rises and grows
    /// with α (less skew), and the 99% rule (E ≤ 3) holds at the limit and fails one above it.
    func testDirichletLimitIsMonotoneAndMeetsItsRule() {
        let limit = { (alpha: Double, m: Int) in dirichletPartitionLimit(labels: self.labels, alpha: alpha, minPartitionSize: m) }
        XCTAssertEqual(dirichletPartitionLimit(labels: labels, alpha: 0.5, minPartitionSize: 0), 5000)
        XCTAssertLessThan(limit(0.5, 10), limit(0.5, 1))
        XCTAssertLessThan(limit(0.1, 1), limit(0.5, 1))
        XCTAssertLessThan(limit(0.5, 1), limit(5, 1))
        XCTAssertLessThanOrEqual(limit(1000, 10), 500)
        let counts = [Int](repeating: 500, count: 10)
        for m in [1, 10] {
            let n = limit(0.5, m)
            XCTAssertLessThanOrEqual(Double(n) * dirichletShortProbability(classCounts: counts, partitions: n, alpha: 0.5, minSize: m), 3)
            XCTAssertGreaterThan(Double(n + 1) * dirichletShortProbability(classCounts: counts, partitions: n + 1, alpha: 0.5, minSize: m), 3)
        }
    }

    func testIIDIsAnEqualExactCoverAndDeterministic() throws {
        let parts = try partition(labels: labels, numPartitions: 7, scheme: .iid, seed: 3)
        assertExactCover(parts, count: labels.count)
        XCTAssertEqual(parts.map(\.count), [715, 715, 714, 714, 714, 714, 714], "5000 = 7·714 + 2")
        XCTAssertEqual(parts, try partition(labels: labels, numPartitions: 7, scheme: .iid, seed: 3))
        XCTAssertNotEqual(parts, try partition(labels: labels, numPartitions: 7, scheme: .iid, seed: 4))
    }

    /// Mean and (population) standard deviation of the logs of `sizes`.
    private func logMoments(_ sizes: [Int]) -> (mean: Double, sd: Double) {
        let logs = sizes.map { log(Double($0)) }
        let mean = logs.reduce(0, +) / Double(logs.count)
        let variance = logs.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(logs.count)
        return (mean, variance.squareRoot())
    }

    /// 1,000,000 examples over 2,000 partitions: log sizes ~ N(log(500) − σ²/2, σ²). The mean of
    /// 2,000 standard normals is within 0.07 of 0 (3 sd), and the normalising sum of weights is
    /// within ~5% of its expectation, so ±0.15 on the mean and ±0.1 on the sd are loose bounds.
    func testLognormalSizesFollowTheDistributionAndCoverTheData() throws {
        for sigma in [0.5, 1.0] {
            let sizes = try lognormalSizes(total: 1_000_000, count: 2000, sigma: sigma, seed: 7)
            XCTAssertEqual(sizes.count, 2000)
            XCTAssertEqual(sizes.reduce(0, +), 1_000_000, "every example placed once")
            XCTAssertGreaterThanOrEqual(sizes.min() ?? 0, 1)
            let (mean, sd) = logMoments(sizes)
            XCTAssertEqual(mean, log(500.0) - sigma * sigma / 2, accuracy: 0.15, "σ \(sigma)")
            XCTAssertEqual(sd, sigma, accuracy: 0.1, "σ \(sigma)")
            XCTAssertEqual(sizes, try lognormalSizes(total: 1_000_000, count: 2000, sigma: sigma, seed: 7), "same seed, same sizes")
            XCTAssertNotEqual(sizes, try lognormalSizes(total: 1_000_000, count: 2000, sigma: sigma, seed: 8))
        }
        // Small data at a heavy tail: some partitions are held at the floor of one example.
        let tight = try lognormalSizes(total: 300, count: 200, sigma: 2, seed: 1)
        XCTAssertEqual(tight.reduce(0, +), 300)
        XCTAssertEqual(tight.min(), 1)
        XCTAssertEqual(try lognormalSizes(total: 5, count: 5, sigma: 1, seed: 1), [1, 1, 1, 1, 1])
    }

    func testLognormalPartitionIsAnExactCoverDeterministicAndSigmaZeroIsTheIIDSplit() throws {
        let scheme = Partitioner.lognormal(sigma: 1)
        let parts = try partition(labels: labels, numPartitions: 40, scheme: scheme, seed: 3)
        assertExactCover(parts, count: labels.count)
        XCTAssertEqual(parts.map(\.count), try lognormalSizes(total: labels.count, count: 40, sigma: 1, seed: 3))
        XCTAssertGreaterThan(parts.map(\.count).max()! - parts.map(\.count).min()!, 100, "sizes are unequal")
        XCTAssert(parts.allSatisfy { $0 == $0.sorted() })
        XCTAssertEqual(parts, try partition(labels: labels, numPartitions: 40, scheme: scheme, seed: 3))
        XCTAssertNotEqual(parts, try partition(labels: labels, numPartitions: 40, scheme: scheme, seed: 4))
        // σ = 0: equal weights, remainders to the lowest indices: exactly the IID split.
        XCTAssertEqual(try partition(labels: labels, numPartitions: 7, scheme: .lognormal(sigma: 0), seed: 3),
                       try partition(labels: labels, numPartitions: 7, scheme: .iid, seed: 3))
        XCTAssertEqual(Partitioner.iid(sizes: .equal), .iid)
        XCTAssertEqual(Partitioner.iid(sizes: .lognormal(sigma: 1.5)), .lognormal(sigma: 1.5))
    }

    func testPartitionSizesParseAndImpossibleCountsNameTheLimit() throws {
        XCTAssertEqual(try PartitionSizes(parsing: "equal"), .equal)
        XCTAssertEqual(try PartitionSizes(parsing: "lognormal:1.5"), .lognormal(sigma: 1.5))
        XCTAssertEqual(try PartitionSizes(parsing: "LogNormal:0"), .lognormal(sigma: 0))
        for bad in ["lognormal:-1", "lognormal:x", "lognormal", "zipf:1", "lognormal:inf"] {
            assertLoaderError(try PartitionSizes(parsing: bad), contains: ["--partition-sizes", "lognormal:σ"])
        }
        assertLoaderError(try partition(labels: labels, numPartitions: 5001, scheme: .lognormal(sigma: 1), seed: 1),
                          contains: ["at most 5000 partitions", "got 5001", "lognormal:1.0"])
    }

    func testDirichletIsAnExactCoverDeterministicAndSeedDependent() throws {
        let scheme = Partitioner.dirichlet(alpha: 0.5, minPartitionSize: 10)
        let parts = try partition(labels: labels, numPartitions: 10, scheme: scheme, seed: 42)
        assertExactCover(parts, count: labels.count)
        XCTAssertEqual(parts, try partition(labels: labels, numPartitions: 10, scheme: scheme, seed: 42), "same seed, same split")
        XCTAssertNotEqual(parts, try partition(labels: labels, numPartitions: 10, scheme: scheme, seed: 43), "different seed, different split")
        XCTAssert(parts.allSatisfy { $0 == $0.sorted() })
    }

    func testMinimumSizeIsHonouredAndImpossibleMinimumIsAClearError() throws {
        // α = 0.05 over 20 partitions: most raw draws leave some partition nearly empty.
        let scheme = Partitioner.dirichlet(alpha: 0.05, minPartitionSize: 30)
        var met = 0, rawTooSmall = 0
        for seed in UInt64(0) ..< 5 {
            let raw = try partition(labels: labels, numPartitions: 20, scheme: .dirichlet(alpha: 0.05, minPartitionSize: 0), seed: seed)
            if (raw.map(\.count).min() ?? 0) < 30 { rawTooSmall += 1 }
            if let parts = try? partition(labels: labels, numPartitions: 20, scheme: scheme, seed: seed) {
                XCTAssertGreaterThanOrEqual(parts.map(\.count).min() ?? 0, 30)
                assertExactCover(parts, count: labels.count)
                met += 1
            }
        }
        XCTAssertGreaterThan(rawTooSmall, 0, "the first draw alone would violate the minimum: re-drawing is exercised")
        XCTAssertGreaterThan(met, 0, "re-drawing meets the minimum for some seed")
        // 2 classes, 50 partitions at α = 0.01: one class's samples land on ~1 partition each time.
        let twoClasses: [Int32] = (0 ..< 1000).map { Int32($0 % 2) }
        assertLoaderError(try partition(labels: twoClasses, numPartitions: 50, scheme: .dirichlet(alpha: 0.01, minPartitionSize: 10), seed: 1),
                          contains: ["after 100 tries", "below the minimum of 10", "--alpha", "--min-partition-size"])
        assertLoaderError(try partition(labels: labels, numPartitions: 10, scheme: .dirichlet(alpha: 1, minPartitionSize: 600), seed: 1),
                          contains: ["--min-partition-size 600", "5000 samples"])
        assertLoaderError(try partition(labels: labels, numPartitions: 0, scheme: .iid, seed: 1), contains: ["--num-partitions"])
        assertLoaderError(try partition(labels: [1, 2], numPartitions: 3, scheme: .iid, seed: 1), contains: ["exceeds the 2 samples"])
        assertLoaderError(try partition(labels: labels, numPartitions: 3, scheme: .dirichlet(alpha: 0, minPartitionSize: 1), seed: 1), contains: ["--alpha"])
    }

    /// Mean over partitions of the largest class's share: 0.1 is perfectly mixed, 1 is one class each.
    private func meanTopShare(alpha: Double, seed: UInt64) throws -> Double {
        let parts = try partition(labels: labels, numPartitions: 10, scheme: .dirichlet(alpha: alpha, minPartitionSize: 1), seed: seed)
        let hist = labelHistogram(labels: labels, partitions: parts, classes: 10)
        return hist.map { Double($0.max() ?? 0) / Double(max($0.reduce(0, +), 1)) }.reduce(0, +) / 10
    }

    func testLargeAlphaIsNearlyUniformSmallAlphaIsSkewed() throws {
        let large = try meanTopShare(alpha: 1000, seed: 5)
        let medium = try meanTopShare(alpha: 1, seed: 5)
        let small = try meanTopShare(alpha: 0.1, seed: 5)
        XCTAssertLessThan(large, 0.13, "α = 1000: each partition close to 10% per class")
        XCTAssertGreaterThan(small, 0.45, "α = 0.1: partitions dominated by few classes")
        XCTAssertLessThan(large, medium); XCTAssertLessThan(medium, small)
        // α = 1000: every class present in every partition, shares within 0.07–0.13.
        let parts = try partition(labels: labels, numPartitions: 10, scheme: .dirichlet(alpha: 1000, minPartitionSize: 1), seed: 5)
        for row in labelHistogram(labels: labels, partitions: parts, classes: 10) {
            let total = Double(row.reduce(0, +))
            XCTAssert(row.allSatisfy { Double($0) / total > 0.07 && Double($0) / total < 0.13 }, "row \(row)")
        }
    }

    func testHistogramCountsByHand() {
        let h = labelHistogram(labels: [0, 1, 1, 2, 2, 2], partitions: [[0, 3], [1, 2, 4, 5]], classes: 3)
        XCTAssertEqual(h, [[1, 0, 1], [0, 2, 2]])
    }

    func testLoadPartitionTakesOnlyItsShare() throws {
        let dir = try temporaryFolder()
        try writeTinyIDX(dir, trainCount: 40, gzipped: true)
        let parts = try partition(labels: (0 ..< 40).map { Int32($0 % 10) }, numPartitions: 4, scheme: .iid, seed: 8)
        let split = try loadPartition(.mnist, dataDir: dir, index: 2, numPartitions: 4, scheme: .iid, seed: 8)
        XCTAssertEqual(split.train.count, 10)
        XCTAssertEqual(split.train.labels, parts[2].map { Int32($0 % 10) })
        XCTAssertTrue(split.train.isRawBytes)
        let full = try loadDataset(.mnist, dataDir: dir).train
        XCTAssertEqual(split.train.allImages(), full.images(at: parts[2]))
        assertLoaderError(try loadPartition(.mnist, dataDir: dir, index: 4, numPartitions: 4, scheme: .iid, seed: 8), contains: ["--partition 4"])
    }
}
