@testable import CIFARLoader
import TestSupport
import Foundation
import XCTest

final class CIFAR10Tests: XCTestCase {
    /// Checks the tiny fixture came back: 15 train records (labels 0…14 mod 10), 2 test records,
    /// pixel p of record r equal to (first + r + p) mod 256, CHW order kept.
    private func assertFixture(_ split: DatasetSplit, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(split.train.count, 15, file: file, line: line)
        XCTAssertEqual(split.test.count, 2, file: file, line: line)
        XCTAssertEqual([split.train.channels, split.train.height, split.train.width], [3, 32, 32], file: file, line: line)
        XCTAssertEqual(split.train.labels, (0 ..< 15).map { Int32($0 % 10) }, file: file, line: line)
        XCTAssertEqual(split.test.labels, [0, 1], file: file, line: line)
        // Record 7 (batch 3, record 1): green plane pixel 0 is byte 1024 of the record.
        let image = split.train.images(at: [7])
        XCTAssertEqual(image[1024], Float((7 + 1024) % 256) / 255, accuracy: 1e-7, file: file, line: line)
        XCTAssertEqual(image[3071], Float((7 + 3071) % 256) / 255, accuracy: 1e-7, file: file, line: line)
    }

    func testReadsBinFilesInAFolderAndInCifar10BatchesBin() throws {
        let flat = try temporaryFolder()
        for (name, bytes) in cifarFiles() { try writeFile("\(flat)/\(name)", bytes) }
        assertFixture(try loadDataset(.cifar10, dataDir: flat))

        let parent = try temporaryFolder()
        try FileManager.default.createDirectory(atPath: "\(parent)/cifar-10-batches-bin", withIntermediateDirectories: true)
        for (name, bytes) in cifarFiles() { try writeFile("\(parent)/cifar-10-batches-bin/\(name)", bytes) }
        assertFixture(try loadDataset(.cifar10, dataDir: parent))
    }

    func testReadsTheTarGzArchiveAsDistributed() throws {
        let dir = try temporaryFolder()
        let members = [("cifar-10-batches-bin/batches.meta.txt", Array("airplane\n".utf8))]
            + cifarFiles().map { ("cifar-10-batches-bin/\($0.0)", $0.1) }
        let archive = try gzip(Tar.archive(members))
        try writeFile("\(dir)/cifar-10-binary.tar.gz", archive)
        assertFixture(try loadDataset(.cifar10, dataDir: dir))
        assertFixture(try loadDataset(.cifar10, dataDir: "\(dir)/cifar-10-binary.tar.gz"))
    }

    func testTruncatedRecordIsNamed() throws {
        let dir = try temporaryFolder()
        for (name, bytes) in cifarFiles() { try writeFile("\(dir)/\(name)", bytes) }
        try writeFile("\(dir)/data_batch_2.bin", Array(cifarBatch(count: 3, first: 3).dropLast(100)))
        assertLoaderError(try loadDataset(.cifar10, dataDir: dir),
                          contains: ["data_batch_2.bin", "truncated", "2 whole 3073-byte records", "2973 bytes of a cut record"])
    }

    func testLabelOutOfRangeIsNamed() throws {
        let dir = try temporaryFolder()
        for (name, bytes) in cifarFiles() { try writeFile("\(dir)/\(name)", bytes) }
        var batch = cifarBatch(count: 3, first: 0)
        batch[2 * CIFAR10.recordSize] = 200
        try writeFile("\(dir)/data_batch_1.bin", batch)
        assertLoaderError(try loadDataset(.cifar10, dataDir: dir), contains: ["data_batch_1.bin", "label 200 of sample 2"])
    }

    func testMissingBatchAndMissingFolderAreNamed() throws {
        let dir = try temporaryFolder()
        assertLoaderError(try loadDataset(.cifar10, dataDir: dir), contains: ["data_batch_1.bin", "cifar-10-binary.tar.gz"])
        for (name, bytes) in cifarFiles() where name != "data_batch_4.bin" { try writeFile("\(dir)/\(name)", bytes) }
        assertLoaderError(try loadDataset(.cifar10, dataDir: dir), contains: ["\(dir)/data_batch_4.bin", "no such file"])
        let archiveDir = try temporaryFolder()
        let archive = try gzip(Tar.archive(cifarFiles().filter { $0.0 != "test_batch.bin" }.map { ("cifar-10-batches-bin/\($0.0)", $0.1) }))
        try writeFile("\(archiveDir)/cifar-10-binary.tar.gz", archive)
        assertLoaderError(try loadDataset(.cifar10, dataDir: archiveDir), contains: ["cifar-10-binary.tar.gz: cifar-10-batches-bin/test_batch.bin"])
    }

    func testCorruptArchiveIsNamed() throws {
        let dir = try temporaryFolder()
        var archive = try gzip(Tar.archive(cifarFiles().map { ("cifar-10-batches-bin/\($0.0)", $0.1) }))
        archive[archive.count / 3] ^= 0xFF; archive[archive.count / 3 + 7] ^= 0x33
        try writeFile("\(dir)/cifar-10-binary.tar.gz", archive)
        assertLoaderError(try loadDataset(.cifar10, dataDir: dir), contains: ["cifar-10-binary.tar.gz"])
    }
}
