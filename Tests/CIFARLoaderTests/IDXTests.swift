@testable import CIFARLoader
import TestSupport
import Foundation
import XCTest

final class IDXTests: XCTestCase {
    func testReadsPlainAndGzippedFilesToTheSameDataset() throws {
        let plainDir = try temporaryFolder(), gzDir = try temporaryFolder()
        try writeTinyIDX(plainDir, gzipped: false)
        try writeTinyIDX(gzDir, gzipped: true)
        for dir in [plainDir, gzDir] {
            let split = try loadDataset(.mnist, dataDir: dir)
            XCTAssertEqual(split.train.count, 20); XCTAssertEqual(split.test.count, 2)
            XCTAssertEqual([split.train.channels, split.train.height, split.train.width], [1, 4, 3])
            XCTAssertEqual(split.train.labels, (0 ..< 20).map { Int32($0 % 10) })
            XCTAssertTrue(split.train.isRawBytes, "pixels stay bytes until asked for")
            // Image 5, pixel 7 = (5·13 + 7·7) mod 256 = 114 → 114/255.
            let image5 = split.train.images(at: [5])
            XCTAssertEqual(image5.count, 12)
            XCTAssertEqual(image5[7], Float(114) / 255, accuracy: 1e-7)
        }
    }

    func testMNISTDotSpellingIsFound() throws {
        let dir = try temporaryFolder()
        try writeTinyIDX(dir, gzipped: false)
        for split in ["train", "t10k"] {
            for kind in ["images-idx3", "labels-idx1"] {
                let parts = kind.split(separator: "-")
                try FileManager.default.moveItem(atPath: "\(dir)/\(split)-\(kind)-ubyte", toPath: "\(dir)/\(split)-\(parts[0]).\(parts[1])-ubyte")
            }
        }
        XCTAssertEqual(try loadDataset(.mnist, dataDir: dir).train.count, 20)
    }

    func testMissingFileNamesThePathAndTheDebianPackage() throws {
        let dir = try temporaryFolder()
        assertLoaderError(try loadDataset(.fashionMNIST, dataDir: dir),
                          contains: [dir + "/train-images-idx3-ubyte", "dataset-fashion-mnist", "--data-dir"])
    }

    func testWrongMagicIsNamed() throws {
        let dir = try temporaryFolder()
        try writeTinyIDX(dir, gzipped: false)
        // A label file where an image file should be: magic 00 00 08 01, not 00 00 08 03.
        try writeFile("\(dir)/train-images-idx3-ubyte", idxLabels([1, 2, 3]))
        assertLoaderError(try loadDataset(.mnist, dataDir: dir),
                          contains: ["train-images-idx3-ubyte", "wrong magic", "00 00 08 01", "00 00 08 03"])
    }

    func testTruncatedImagesAreNamed() throws {
        let dir = try temporaryFolder()
        try writeTinyIDX(dir, gzipped: false)
        let full = idxImages(count: 20, rows: 4, cols: 3) { _, _ in 1 }
        try writeFile("\(dir)/train-images-idx3-ubyte", Array(full.dropLast(5)))
        assertLoaderError(try loadDataset(.mnist, dataDir: dir),
                          contains: ["train-images-idx3-ubyte", "truncated", "20 images", "19 whole images"])
        try writeFile("\(dir)/train-images-idx3-ubyte", [0, 0, 8, 3, 0, 0])
        assertLoaderError(try loadDataset(.mnist, dataDir: dir), contains: ["truncated", "16-byte header"])
    }

    func testLabelOutOfRangeIsNamedWithItsIndex() throws {
        let dir = try temporaryFolder()
        try writeTinyIDX(dir, gzipped: false)
        var labels = (0 ..< 20).map { UInt8($0 % 10) }
        labels[13] = 10
        try writeFile("\(dir)/train-labels-idx1-ubyte", idxLabels(labels))
        assertLoaderError(try loadDataset(.mnist, dataDir: dir),
                          contains: ["train-labels-idx1-ubyte", "label 10 of sample 13", "0..<10"])
    }

    func testCountMismatchNamesBothFiles() throws {
        let dir = try temporaryFolder()
        try writeTinyIDX(dir, gzipped: false)
        try writeFile("\(dir)/train-labels-idx1-ubyte", idxLabels((0 ..< 19).map { UInt8($0 % 10) }))
        assertLoaderError(try loadDataset(.mnist, dataDir: dir),
                          contains: ["train-images-idx3-ubyte holds 20 images", "train-labels-idx1-ubyte holds 19 labels"])
    }

    func testCorruptAndCutGzipAreNamed() throws {
        let dir = try temporaryFolder()
        try writeTinyIDX(dir, gzipped: true)
        let path = "\(dir)/train-images-idx3-ubyte.gz"
        var gz = try readFileBytes(path)
        let good = gz
        gz[gz.count / 2] ^= 0xFF; gz[gz.count / 2 + 1] ^= 0x5A
        try writeFile(path, gz)
        assertLoaderError(try loadDataset(.mnist, dataDir: dir), contains: [path, "corrupt"])
        try writeFile(path, Array(good.prefix(good.count / 2)))
        assertLoaderError(try loadDataset(.mnist, dataDir: dir), contains: [path, "ends early"])
    }

    func testImpossibleHeaderSizeIsAnErrorNotACrash() throws {
        let dir = try temporaryFolder()
        try writeTinyIDX(dir, gzipped: false)
        try writeFile("\(dir)/train-images-idx3-ubyte", [0, 0, 8, 3] + be32(0xFFFF_FFFF) + be32(0xFFFF_FFFF) + be32(0xFFFF_FFFF))
        assertLoaderError(try loadDataset(.mnist, dataDir: dir), contains: ["train-images-idx3-ubyte"])
    }

    /// The real Fashion-MNIST from Debian's dataset-fashion-mnist (scripts/bootstrap installs it).
    func testRealFashionMNISTFromItsDefaultLocation() throws {
        guard FileManager.default.fileExists(atPath: "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz") else {
            throw XCTSkip("dataset-fashion-mnist is not installed (scripts/bootstrap installs it)")
        }
        let split = try loadDataset(.fashionMNIST, dataDir: nil)
        XCTAssertEqual(split.train.count, 60000); XCTAssertEqual(split.test.count, 10000)
        XCTAssertEqual([split.train.channels, split.train.height, split.train.width], [1, 28, 28])
        XCTAssertEqual(split.train.labelCounts(), Array(repeating: 6000, count: 10), "Fashion-MNIST is balanced")
        XCTAssertEqual(split.test.labelCounts(), Array(repeating: 1000, count: 10))
        XCTAssertEqual(split.train.labels.prefix(3), [9, 0, 0], "first training labels: ankle boot, T-shirt, T-shirt")
        // The mean pixel of the training set is 0.2860 (the normalisation constant we ship).
        let (mean, std) = split.train.subset(Array(0 ..< 6000)).computeChannelStats()
        XCTAssertEqual(mean[0], 0.2860, accuracy: 0.01); XCTAssertEqual(std[0], 0.3530, accuracy: 0.01)
    }
}
