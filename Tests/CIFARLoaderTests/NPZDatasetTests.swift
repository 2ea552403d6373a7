@testable import CIFARLoader
import TestSupport
import Foundation
import XCTest

final class NPZDatasetTests: XCTestCase {
    private func tinyDataset() -> Dataset {
        Dataset(bytes: (0 ..< 5 * 12).map { UInt8($0 * 4 % 256) }, labels: [0, 3, 1, 3, 2],
                channels: 1, height: 4, width: 3, classes: 4, name: "tiny")
    }

    func testWriteThenLoadAsNpzDataset() throws {
        let dir = try temporaryFolder()
        let data = tinyDataset()
        try NPZ.writeDataset(data, to: "\(dir)/partition.npz")
        let split = try loadDataset(.npz, dataDir: dir)
        XCTAssertEqual(split.train.count, 5); XCTAssertEqual(split.train.classes, 4)
        XCTAssertEqual([split.train.channels, split.train.height, split.train.width], [1, 4, 3])
        XCTAssertEqual(split.train.labels, data.labels)
        XCTAssertEqual(split.train.allImages(), data.allImages())
        XCTAssertEqual(split.test.count, 0, "no test.npz: empty test set")
        try NPZ.writeDataset(data.subset([1, 2]), to: "\(dir)/test.npz")
        XCTAssertEqual(try loadDataset(.npz, dataDir: dir).test.labels, [3, 1])
    }

    /// numpy sees float32 images N×C×H×W in [0, 1] and int64 labels with our values.
    func testNumpyReadsAPartitionWithTheRightValues() throws {
        let dir = try temporaryFolder()
        try NPZ.writeDataset(tinyDataset(), to: "\(dir)/partition.npz")
        let out = try runNumpy("""
            z = np.load('\(dir)/partition.npz')
            x, y = z['images'], z['labels']
            assert x.dtype == np.float32 and x.shape == (5, 1, 4, 3), (x.dtype, x.shape)
            assert y.dtype == np.int64 and list(y) == [0, 3, 1, 3, 2]
            expected = (np.arange(60) * 4 % 256).astype(np.float32).reshape(5, 1, 4, 3) / np.float32(255)
            assert np.allclose(x, expected, atol=1e-7), np.abs(x - expected).max()
            print(int(z['classes']), x.shape)
            """, self)
        XCTAssertEqual(out, "4 (5, 1, 4, 3)")
    }

    func testNumpyWrittenDatasetsLoad() throws {
        let dir = try temporaryFolder()
        _ = try runNumpy("""
            np.savez('\(dir)/partition.npz', images=np.full((3, 5, 5), 0.25, dtype=np.float32), labels=np.array([2, 0, 7]))
            """, self)
        let train = try loadDataset(.npz, dataDir: dir).train
        XCTAssertEqual([train.count, train.channels, train.height, train.width, train.classes], [3, 1, 5, 5, 8])
        XCTAssertEqual(train.images(at: [2]), Array(repeating: 0.25, count: 25))
    }

    func testBadNpzDatasetsAreClearErrors() throws {
        let dir = try temporaryFolder()
        try NPZ.write([NPZArray(name: "images", shape: [2, 1, 2, 2], floats: Array(repeating: 0, count: 8)),
                       NPZArray(name: "labels", shape: [3], int64s: [0, 1, 1])], to: "\(dir)/partition.npz")
        assertLoaderError(try loadDataset(.npz, dataDir: dir), contains: ["holds 2 images", "holds 3 labels"])
        try NPZ.write([NPZArray(name: "images", shape: [2, 1, 2, 2], floats: Array(repeating: 0, count: 8)),
                       NPZArray(name: "labels", shape: [2], int64s: [0, 5]),
                       NPZArray(name: "classes", shape: [], int64s: [3])], to: "\(dir)/partition.npz")
        assertLoaderError(try loadDataset(.npz, dataDir: dir), contains: ["label 5 of sample 1", "0..<3"])
        try NPZ.write([NPZArray(name: "labels", shape: [1], int64s: [0])], to: "\(dir)/partition.npz")
        assertLoaderError(try loadDataset(.npz, dataDir: dir), contains: ["no 'images' array", "found: labels"])
        assertLoaderError(try loadDataset(.npz, dataDir: nil), contains: ["--data-dir"])
    }
}
