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
}
