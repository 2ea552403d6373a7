@testable import CIFARLoader
import TestSupport
import Foundation
import XCTest

final class TarTests: XCTestCase {
    func testListsFilesWithTheirBytes() throws {
        let tar = Tar.archive([("a/one.bin", [1, 2, 3]), ("a/empty", []), ("b.txt", Array(repeating: 7, count: 513))])
        XCTAssertEqual(tar.count, 512 * 3 + 512 + 1024 + 1024, "3 headers, data padded to 512, 2 end blocks")
        let entries = try Tar.entries(tar, path: "t.tar")
        XCTAssertEqual(entries.map(\.name), ["a/one.bin", "a/empty", "b.txt"])
        XCTAssertEqual(Array(tar[entries[0].range]), [1, 2, 3])
        XCTAssertEqual(entries[1].range.count, 0)
        XCTAssertEqual(Array(tar[entries[2].range]), Array(repeating: 7, count: 513))
    }

    /// GNU tar writes what our writer writes: `tar` of the system lists our archive.
    func testSystemTarReadsOurArchiveAndWeReadItsArchive() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/tar") || FileManager.default.isExecutableFile(atPath: "/bin/tar") else {
            throw XCTSkip("no tar on this machine")
        }
        let dir = try temporaryFolder()
        try FileManager.default.createDirectory(atPath: "\(dir)/src/cifar-10-batches-bin", withIntermediateDirectories: true)
        try writeFile("\(dir)/src/cifar-10-batches-bin/test_batch.bin", cifarBatch(count: 2, first: 4))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["tar", "-czf", "\(dir)/x.tar.gz", "-C", "\(dir)/src", "cifar-10-batches-bin"]
        try process.run(); process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0)
        let tar = try readMaybeGzip("\(dir)/x.tar.gz")
        let entries = try Tar.entries(tar, path: "x.tar.gz")
        let batch = try XCTUnwrap(entries.first { $0.name.hasSuffix("test_batch.bin") })
        XCTAssertEqual(Array(tar[batch.range]), cifarBatch(count: 2, first: 4))

        // And the other way: system tar extracts the archive our writer makes.
        try writeFile("\(dir)/ours.tar", Tar.archive([("out/d.bin", [9, 8, 7])]))
        let extract = Process()
        extract.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        extract.arguments = ["tar", "-xf", "\(dir)/ours.tar", "-C", dir]
        try extract.run(); extract.waitUntilExit()
        XCTAssertEqual(extract.terminationStatus, 0)
        XCTAssertEqual(try readFileBytes("\(dir)/out/d.bin"), [9, 8, 7])
    }

    func testDamagedHeaderAndCutArchiveAreErrors() throws {
        var tar = Tar.archive([("x.bin", Array(repeating: 1, count: 2000))])
        tar[10] ^= 0x40
        assertLoaderError(try Tar.entries(tar, path: "t.tar"), contains: ["t.tar", "checksum"])
        let cut = Array(Tar.archive([("x.bin", Array(repeating: 1, count: 2000))]).prefix(1200))
        assertLoaderError(try Tar.entries(cut, path: "t.tar"), contains: ["t.tar", "x.bin", "truncated"])
    }
}
