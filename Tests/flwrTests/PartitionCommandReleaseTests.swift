import Foundation
import TestSupport
import XCTest

/// `flwr partition` as a user runs it on real Fashion-MNIST: the printed histogram is Flower
/// Datasets' seed-42 split, and `--indices-out` writes it as an .npz numpy reads.
final class PartitionCommandReleaseTests: XCTestCase {
    override func setUpWithError() throws {
        try requireReleaseBuild()
        try requireFashionMNIST()
    }

    func testIndicesOutIsFlowerDatasetsSplitAndNumpyReadsIt() throws {
        let dir = NSTemporaryDirectory() + "flwr-partition-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let run1 = try runProgram(try flwrBinaryPath(),
                                           ["partition", "--alpha", "0.5", "--seed", "42", "--indices-out", "\(dir)/split.npz"])
        let (status, out) = (run1.status, run1.output)
        XCTAssertEqual(status, 0, out)
        // Partition 2's row as Flower Datasets 0.6.1 printed it for the same α and seed.
        XCTAssert(out.contains("   2    9   22  675   79   36  135  610   28  254   24  1872"), out)

        let script = """
            import numpy as np
            z = np.load('\(dir)/split.npz')
            parts = [z[f'p{i}'] for i in range(10)]
            allidx = np.concatenate(parts)
            assert all(p.dtype == np.int64 and np.all(np.diff(p) > 0) for p in parts)
            assert np.array_equal(np.sort(allidx), np.arange(60000))
            print(' '.join(str(len(p)) for p in parts))
            """
        let run2 = try runProgram("/usr/bin/env", ["python3", "-c", script])
        let (pyStatus, sizes) = (run2.status, run2.output)
        XCTAssertEqual(pyStatus, 0, sizes)
        XCTAssertEqual(sizes.trimmingCharacters(in: .whitespacesAndNewlines), "9035 8072 1872 9307 6451 5901 5062 3459 8272 2569")
    }

    /// `--partition-sizes lognormal:σ` prints an IID split of unequal sizes covering all 60,000
    /// images (the sizes the partitioner computes for that seed); beside --alpha it is refused.
    func testLognormalSizesAndTheirRefusalBesideAlpha() throws {
        let run = try runProgram(try flwrBinaryPath(), ["partition", "--num-partitions", "20", "--partition-sizes", "lognormal:1", "--seed", "3"])
        XCTAssertEqual(run.status, 0, run.output)
        XCTAssert(run.output.contains("20 partitions (IID, lognormal:1.0 sizes, seed 3)"), run.output)
        let rows = run.output.split(separator: "\n").map { $0.split(separator: " ") }
        let totals = rows.filter { $0.count == 14 && Int($0[0]) != nil }.map { Int($0[11])! }
        XCTAssertEqual(totals.count, 20, run.output)
        XCTAssertEqual(totals.reduce(0, +), 60000)
        XCTAssertGreaterThan(totals.max()! , 3 * totals.min()!, "lognormal σ = 1 sizes are unequal: \(totals)")
        let refused = try runProgram(try flwrBinaryPath(), ["partition", "--alpha", "0.5", "--partition-sizes", "lognormal:1"])
        XCTAssertNotEqual(refused.status, 0)
        XCTAssert(refused.output.contains("--partition-sizes lognormal:1 sizes an IID split"), refused.output)
        let simulate = try runProgram(try flwrBinaryPath(), ["simulate", "--alpha", "0.5", "--partition-sizes", "lognormal:1"])
        XCTAssertNotEqual(simulate.status, 0)
        XCTAssert(simulate.output.contains("drop --alpha (simulate: --alpha 0)"), simulate.output)
        let bad = try runProgram(try flwrBinaryPath(), ["partition", "--partition-sizes", "zipf:2"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssert(bad.output.contains("use equal or lognormal:σ"), bad.output)
    }

    /// Above 50 partitions `flwr partition` prints a summary, not a row per partition; --all
    /// forces the rows.
    func testManyPartitionsPrintASummaryUnlessAll() throws {
        let run = try runProgram(try flwrBinaryPath(), ["partition", "--num-partitions", "60000"])
        XCTAssertEqual(run.status, 0, run.output)
        XCTAssert(run.output.contains("60000 partitions, 60000 samples (one row per partition: --all)"), run.output)
        XCTAssert(run.output.contains("size: min 1, median 1, mean 1.0, max 1"), run.output)
        XCTAssert(run.output.contains("classes present: min 1, median 1, mean 1.0, max 1"), run.output)
        XCTAssert(run.output.contains("largest class share: min 100%, median 100%, mean 100.0%, max 100%"), run.output)
        XCTAssert(run.output.contains("class totals: c0 6000, c1 6000,"), run.output)
        XCTAssertLessThan(run.output.split(separator: "\n").count, 10, run.output)
        let rows = try runProgram(try flwrBinaryPath(), ["partition", "--num-partitions", "51", "--all"])
        XCTAssertEqual(rows.status, 0, rows.output)
        // The title, the header, 51 rows and the totals row.
        XCTAssertEqual(rows.output.split(separator: "\n").count, 54, rows.output)
        let summary = try runProgram(try flwrBinaryPath(), ["partition", "--num-partitions", "51"])
        XCTAssert(summary.output.contains("51 partitions, 60000 samples"), summary.output)
        // 60000 = 51·1176 + 24: sizes 1177 (24 of them) and 1176.
        XCTAssert(summary.output.contains("size: min 1176, median 1176, mean 1176.5, max 1177"), summary.output)
    }
}
