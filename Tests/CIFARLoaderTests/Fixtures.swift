// Fixtures: small files in the real formats (IDX, CIFAR-10 batches, tar.gz), written to a fresh
// temporary folder per test, and shared helpers.
@testable import CIFARLoader
import FlowerZlib
import Foundation
import XCTest
import TestSupport

/// Writes `bytes` to `path`.
func writeFile(_ path: String, _ bytes: [UInt8]) throws {
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}

/// Big-endian UInt32.
func be32(_ v: Int) -> [UInt8] { [UInt8(v >> 24 & 0xFF), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }

/// An IDX3 image file: magic 00 00 08 03, N, rows, cols, pixels.
func idxImages(count: Int, rows: Int, cols: Int, pixel: (Int, Int) -> UInt8) -> [UInt8] {
    var out: [UInt8] = [0, 0, 8, 3] + be32(count) + be32(rows) + be32(cols)
    for i in 0 ..< count { for p in 0 ..< rows * cols { out.append(pixel(i, p)) } }
    return out
}

/// An IDX1 label file: magic 00 00 08 01, N, labels.
func idxLabels(_ labels: [UInt8]) -> [UInt8] { [0, 0, 8, 1] + be32(labels.count) + labels }

/// gzip of `bytes`.
func gzip(_ bytes: [UInt8]) throws -> [UInt8] { try Zlib.compress(bytes, level: 6, format: .gzip) }

/// Writes a tiny IDX dataset (train: `trainCount` 4×3 images, t10k: 2) to `dir`, gzipped or plain.
/// Pixel p of image i is (i·13 + p·7) mod 256, label i mod 10.
func writeTinyIDX(_ dir: String, trainCount: Int = 20, gzipped: Bool) throws {
    for (split, n) in [("train", trainCount), ("t10k", 2)] {
        let images = idxImages(count: n, rows: 4, cols: 3) { i, p in UInt8((i * 13 + p * 7) % 256) }
        let labels = idxLabels((0 ..< n).map { UInt8($0 % 10) })
        let ext = gzipped ? ".gz" : ""
        try writeFile("\(dir)/\(split)-images-idx3-ubyte\(ext)", gzipped ? try gzip(images) : images)
        try writeFile("\(dir)/\(split)-labels-idx1-ubyte\(ext)", gzipped ? try gzip(labels) : labels)
    }
}

/// One CIFAR-10 batch of `count` records: label (first + r) mod 10, pixel p = (r + p) mod 256.
func cifarBatch(count: Int, first: Int) -> [UInt8] {
    var out: [UInt8] = []
    for r in 0 ..< count {
        out.append(UInt8((first + r) % 10))
        for p in 0 ..< 3072 { out.append(UInt8((first + r + p) % 256)) }
    }
    return out
}

/// The six CIFAR-10 batch files (3 records per training batch, 2 in the test batch).
func cifarFiles() -> [(String, [UInt8])] {
    CIFAR10.trainFiles.enumerated().map { ($0.element, cifarBatch(count: 3, first: $0.offset * 3)) }
        + [(CIFAR10.testFile, cifarBatch(count: 2, first: 100))]
}

/// Asserts `body` throws a `LoaderError` whose description contains every string in `fragments`.
func assertLoaderError<T>(_ body: @autoclosure () throws -> T, contains fragments: [String],
                          file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertThrowsError(try body(), file: file, line: line) { error in
        guard error is LoaderError else { return XCTFail("expected a LoaderError, got \(error)", file: file, line: line) }
        let text = "\(error)"
        for fragment in fragments where !text.contains(fragment) {
            XCTFail("error \"\(text)\" does not mention \"\(fragment)\"", file: file, line: line)
        }
    }
}
