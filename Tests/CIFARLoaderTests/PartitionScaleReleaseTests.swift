@testable import CIFARLoader
import TestSupport
import Foundation
import XCTest

/// Partitioning at cross-device scale on real files written here in their formats: CIFAR-10
/// binary batches (5 × 2,000 records, labels cycling 0…9: 1,000 per class) and a CSV (5,000
/// rows, labels cycling 0…2; the loader holds out every fifth row, leaving 4,000 to train on).
/// IID up to one sample per partition, Dirichlet up to the limit `dirichletPartitionLimit`
/// names, and 10⁶ partitions refused with the largest number that works. The summary lines are
/// `flwr partition`'s (one line per statistic, not 10⁶ rows); the numbers are those `flwr
/// partition` printed on the same files with the same seed.
final class PartitionScaleReleaseTests: XCTestCase {
    override func setUpWithError() throws {
        #if DEBUG
        throw XCTSkip("release-only: run swift test -c release --filter ReleaseTests")
        #endif
    }

    private func cifarTrain() throws -> Dataset {
        let dir = try temporaryFolder()
        for (i, name) in CIFAR10.trainFiles.enumerated() { try writeFile("\(dir)/\(name)", cifarBatch(count: 2000, first: i * 2000)) }
        try writeFile("\(dir)/\(CIFAR10.testFile)", cifarBatch(count: 10, first: 0))
        return try loadDataset(.cifar10, dataDir: dir).train
    }

    private func csvTrain() throws -> Dataset {
        let path = try temporaryFolder() + "/rows.csv"
        var text = "f0,f1,f2,label\n"
        for i in 0 ..< 5000 { text += "\(i % 13),\(i * 7 % 17),\(i * 3 % 5),\(i % 3)\n" }
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return try loadDataset(.csv, dataDir: nil, files: DataFiles(dataFile: path, labelColumn: "label")).train
    }

    /// The summary `flwr partition` prints for `parts`.
    private func summary(_ train: Dataset, _ parts: [[Int]]) -> String {
        partitionSummary(labelHistogram(labels: train.labels, partitions: parts, classes: train.classes))
    }

    private func dirichlet(_ train: Dataset, _ n: Int, min: Int) throws -> [[Int]] {
        try partition(labels: train.labels, numPartitions: n, scheme: .dirichlet(alpha: 0.5, minPartitionSize: min), seed: 42)
    }

    func testCIFARBatchesSplitIIDAndDirichletUpToTheirLimits() throws {
        let train = try cifarTrain()
        XCTAssertEqual(train.count, 10000)
        assertLoaderError(try partition(labels: train.labels, numPartitions: 1_000_000, scheme: .iid, seed: 42),
                          contains: ["--num-partitions 1000000 exceeds the 10000 samples", "10000 partitions is the most that works"])
        let iid = try partition(labels: train.labels, numPartitions: 10000, scheme: .iid, seed: 42)
        XCTAssertEqual(Set(iid.joined()).count, 10000)
        let iidSummary = summary(train, iid)
        for line in ["10000 partitions, 10000 samples", "size: min 1, median 1, mean 1.0, max 1",
                     "class totals: c0 1000, c1 1000, c2 1000, c3 1000, c4 1000, c5 1000, c6 1000, c7 1000, c8 1000, c9 1000"] {
            XCTAssertTrue(iidSummary.contains(line), iidSummary)
        }

        XCTAssertEqual(dirichletPartitionLimit(labels: train.labels, alpha: 0.5, minPartitionSize: 10), 270)
        XCTAssertEqual(dirichletPartitionLimit(labels: train.labels, alpha: 0.5, minPartitionSize: 1), 1337)
        assertLoaderError(try dirichlet(train, 1_000_000, min: 10),
                          contains: ["exceeds the 10000 samples", "works up to about 270 partitions", "(--min-partition-size 1: about 1337)"])
        assertLoaderError(try dirichlet(train, 5000, min: 10),
                          contains: ["--min-partition-size 10 × 5000 partitions exceeds the 10000 samples", "about 270 partitions"])
        // At the limit the split is made; at twice it the 100 draws fail and the error names it.
        let atLimit = try dirichlet(train, 270, min: 10)
        XCTAssertEqual(Set(atLimit.joined()).count, 10000)
        XCTAssertTrue(summary(train, atLimit).contains("size: min 10, median 35, mean 37.0, max 108"), summary(train, atLimit))
        let small = try dirichlet(train, 1337, min: 1)
        XCTAssertTrue(summary(train, small).contains("size: min 1, median 7, mean 7.5, max 25"), summary(train, small))
        assertLoaderError(try dirichlet(train, 2674, min: 1),
                          contains: ["2674 partitions", "10000 samples in 10 classes", "about 1337 partitions at most", "lower --num-partitions to 1337"])
        assertLoaderError(try dirichlet(train, 540, min: 10), contains: ["about 270 partitions at most"])
    }

    func testCSVSplitsIIDAndDirichletUpToItsLimits() throws {
        let train = try csvTrain()
        XCTAssertEqual(train.count, 4000)
        XCTAssertEqual(train.classes, 3)
        assertLoaderError(try partition(labels: train.labels, numPartitions: 1_000_000, scheme: .iid, seed: 42),
                          contains: ["exceeds the 4000 samples", "4000 partitions is the most that works"])
        let iid = try partition(labels: train.labels, numPartitions: 4000, scheme: .iid, seed: 42)
        let iidSummary = summary(train, iid)
        for line in ["4000 partitions, 4000 samples", "size: min 1, median 1, mean 1.0, max 1", "class totals: c0 1334, c1 1333, c2 1333"] {
            XCTAssertTrue(iidSummary.contains(line), iidSummary)
        }
        assertLoaderError(try dirichlet(train, 1_000_000, min: 10),
                          contains: ["exceeds the 4000 samples", "works up to about 53 partitions", "(--min-partition-size 1: about 253)"])
        let atLimit = try dirichlet(train, 53, min: 10)
        XCTAssertTrue(summary(train, atLimit).contains("size: min 10, median 67, mean 75.5, max 280"), summary(train, atLimit))
        let small = try dirichlet(train, 253, min: 1)
        XCTAssertTrue(summary(train, small).contains("size: min 1, median 12, mean 15.8, max 71"), summary(train, small))
        assertLoaderError(try dirichlet(train, 506, min: 1), contains: ["4000 samples in 3 classes", "about 253 partitions at most"])
    }
}
