// `--dataset npz --data-file F`: any numpy-written file with `images` (N×C×H×W or N×H×W) or
// `features` (N×F) and `labels`, at any image size; bad shapes are clear errors.
@testable import CIFARLoader
import TestSupport
import Foundation
import XCTest

final class NPZFileDatasetTests: XCTestCase {
    func testNumpyFeaturesAreStandardisedWithTrainStatistics() throws {
        let dir = try temporaryFolder()
        _ = try runNumpy("""
            x = np.array([[1, 10], [3, 10], [5, 13]], dtype=np.float64)
            np.savez('\(dir)/train.npz', features=x, labels=np.array([0, 2, 1]))
            np.savez('\(dir)/test.npz', features=np.array([[3, 11]], dtype=np.float32), labels=np.array([1], dtype=np.int32))
            """, self)
        let split = try loadDataset(.npz, dataDir: nil, files: DataFiles(dataFile: "\(dir)/train.npz", testFile: "\(dir)/test.npz"))
        XCTAssertEqual(split.train.inputKind, .features); XCTAssertEqual(split.train.featureCount, 2)
        XCTAssertEqual(split.train.classes, 3); XCTAssertEqual(split.train.labels, [0, 2, 1]); XCTAssertEqual(split.test.labels, [1])
        // Column 0: mean 3, population std sqrt(8/3); column 1: mean 11, std sqrt(2).
        let s0 = (8.0 / 3).squareRoot(), s1 = 2.0.squareRoot()
        let expected = [-2 / s0, -1 / s1, 0, -1 / s1, 2 / s0, 2 / s1].map(Float.init)
        for (a, b) in zip(split.train.allImages(), expected) { XCTAssertEqual(a, b, accuracy: 1e-6) }
        XCTAssertEqual(split.test.allImages(), [0, 0])
    }

    /// A small image set (8×8, N×H×W uint8) under any file name, without a test file.
    func testNumpyImagesOfAnySizeLoadFromAnyFile() throws {
        let dir = try temporaryFolder()
        _ = try runNumpy("""
            x = (np.arange(3 * 8 * 8) % 256).astype(np.uint8).reshape(3, 8, 8)
            np.savez('\(dir)/digits.npz', images=x, labels=np.array([4, 0, 9]))
            y = np.linspace(-1, 1, 2 * 3 * 5 * 7, dtype=np.float32).reshape(2, 3, 5, 7)
            np.savez('\(dir)/rgb.npz', images=y, labels=np.array([1, 0]))
            """, self)
        let gray = try loadDataset(.npz, dataDir: nil, files: DataFiles(dataFile: "\(dir)/digits.npz"))
        XCTAssertEqual([gray.train.count, gray.train.channels, gray.train.height, gray.train.width, gray.train.classes], [3, 1, 8, 8, 10])
        XCTAssertEqual(gray.train.inputKind, .pixels); XCTAssert(gray.train.isRawBytes)
        XCTAssertEqual(gray.train.allImages()[65], Float(65) / 255)
        XCTAssertEqual(gray.test.count, 0)
        let rgb = try loadDataset(.npz, dataDir: nil, files: DataFiles(dataFile: "\(dir)/rgb.npz", testFile: "\(dir)/rgb.npz"))
        XCTAssertEqual([rgb.train.channels, rgb.train.height, rgb.train.width], [3, 5, 7])
        XCTAssertEqual(rgb.train.allImages().first, -1); XCTAssertEqual(rgb.test.labels, [1, 0])
    }

    func testBadShapesAreClearErrors() throws {
        let dir = try temporaryFolder()
        _ = try runNumpy("""
            np.savez('\(dir)/f3.npz', features=np.zeros((2, 3, 4)), labels=np.array([0, 1]))
            np.savez('\(dir)/i2.npz', images=np.zeros((2, 3), dtype=np.float32), labels=np.array([0, 1]))
            np.savez('\(dir)/f0.npz', features=np.zeros((2, 0)), labels=np.array([0, 1]))
            np.savez('\(dir)/nan.npz', features=np.array([[1.0, np.nan]]), labels=np.array([0]))
            np.savez('\(dir)/img.npz', images=np.zeros((2, 4, 4), dtype=np.float32), labels=np.array([0, 1]))
            np.savez('\(dir)/feat.npz', features=np.zeros((2, 16)), labels=np.array([0, 1]))
            """, self)
        let cases: [(String, String?, String)] = [
            ("f3.npz", nil, "expected N×F"), ("i2.npz", nil, "expected N×C×H×W or N×H×W"),
            ("f0.npz", nil, "zero-sized"), ("nan.npz", nil, "row 0, column 1"),
            ("img.npz", "feat.npz", "differ from"),
        ]
        for (file, test, words) in cases {
            XCTAssertThrowsError(try loadDataset(.npz, dataDir: nil, files: DataFiles(dataFile: "\(dir)/\(file)", testFile: test.map { "\(dir)/\($0)" }))) {
                XCTAssert("\($0)".contains(words), "\(file): \($0)")
            }
        }
    }
}
