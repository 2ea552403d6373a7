@testable import CIFARLoader
import TestSupport
import Foundation
import XCTest

/// Real Fashion-MNIST end to end: partition, privatise, write, and numpy reads it back.
final class CIFARLoaderReleaseTests: XCTestCase {
    override func setUpWithError() throws {
        #if DEBUG
        throw XCTSkip("release-only: run swift test -c release --filter ReleaseTests")
        #endif
    }

    func testRealFashionMNISTPartitionPrivatizeAndNumpyReadsIt() throws {
        guard FileManager.default.fileExists(atPath: "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz") else {
            throw XCTSkip("dataset-fashion-mnist is not installed (scripts/bootstrap installs it)")
        }
        let full = try loadDataset(.fashionMNIST, dataDir: nil)
        let scheme = Partitioner.dirichlet(alpha: 0.5, minPartitionSize: 10)
        let parts = try partition(labels: full.train.labels, numPartitions: 10, scheme: scheme, seed: 42)
        XCTAssertEqual(parts.map(\.count).reduce(0, +), 60000)
        // Flower Datasets 0.6.1 printed these for DirichletPartitioner(num_partitions=10,
        // partition_by="label", alpha=0.5, seed=42) on the same labels: the same split, member for member.
        XCTAssertEqual(parts.map(\.count), [9035, 8072, 1872, 9307, 6451, 5901, 5062, 3459, 8272, 2569])
        let histogram = labelHistogram(labels: full.train.labels, partitions: parts, classes: 10)
        XCTAssertEqual(histogram[0], [866, 3459, 1397, 545, 969, 40, 251, 193, 178, 1137])
        XCTAssertEqual(histogram[9], [802, 538, 552, 1, 311, 126, 9, 67, 37, 126])
        XCTAssertEqual(Set(parts.joined()).count, 60000)
        let split = try loadPartition(.fashionMNIST, dataDir: nil, index: 3, numPartitions: 10, scheme: scheme, seed: 42)
        XCTAssertEqual(split.train.labels, parts[3].map { full.train.labels[$0] })

        let dir = try temporaryFolder()
        let released = try privatize(split.train, request: PrivacyRequest(epsilon: 1, unit: .pixel, budget: 4, seed: 99, ledgerDirectory: dir))
        try NPZ.writeDataset(released.dataset, to: "\(dir)/partition.npz")
        let clean = split.train.allImages(), noised = released.dataset.allImages()
        let meanAbsChange = zip(clean, noised).reduce(0.0) { $0 + Double(abs($1.0 - $1.1)) } / Double(clean.count)
        // Laplace(0, 1) then clipping to [0, 1]: each value moves by well under 1 on average, over 0.2.
        XCTAssert(meanAbsChange > 0.2 && meanAbsChange < 0.6, "mean |change| \(meanAbsChange)")
        let n = split.train.count
        let out = try runNumpy("""
            z = np.load('\(dir)/partition.npz')
            x, y = z['images'], z['labels']
            assert x.shape == (\(n), 1, 28, 28) and x.dtype == np.float32 and y.dtype == np.int64
            assert 0.0 <= x.min() and x.max() <= 1.0
            print(float(x[0, 0, 14, 14]), int(y[0]), int(y.sum()))
            """, self)
        let expected = "\(Double(noised[14 * 28 + 14])) \(split.train.labels[0]) \(split.train.labels.reduce(0) { $0 + Int($1) })"
        XCTAssertEqual(out, expected)
        let back = try loadDataset(.npz, dataDir: dir).train
        XCTAssertEqual(back.allImages(), noised)
    }
}
