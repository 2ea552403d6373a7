import Foundation
import XCTest
@testable import FlowerCore

/// `AtomicFile.write`: the whole file or nothing, and a failed rename says what to do.
final class AtomicFileTests: XCTestCase {
    private func tempDir() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("flwr-atomic-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        return dir
    }

    func testWritesTheBytesAndLeavesNoTemporaryFile() throws {
        let dir = try tempDir()
        try AtomicFile.write([1, 2, 3], to: dir + "/out.bin")
        try AtomicFile.write([4, 5], to: dir + "/out.bin")
        XCTAssertEqual([UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/out.bin"))), [4, 5])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["out.bin"])
    }

    /// A directory where the file should go: rename(2) fails with EISDIR; the error names the
    /// directory and the fix, and the temporary file is gone.
    func testADirectoryInTheWayIsNamedWithTheFix() throws {
        let dir = try tempDir()
        try FileManager.default.createDirectory(atPath: dir + "/history.jsonl", withIntermediateDirectories: false)
        XCTAssertThrowsError(try AtomicFile.write([1], to: dir + "/history.jsonl")) { error in
            guard case FileError.rename(_, _, let e) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(e, EISDIR)
            XCTAssertTrue("\(error)".hasSuffix("\(dir)/history.jsonl is a directory: remove it or choose another output path"), "\(error)")
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["history.jsonl"])
    }

    func testAdviceFollowsTheErrno() {
        XCTAssertEqual(FileError.renameAdvice(EACCES, target: "/x"), "make /x and its directory writable, or choose another output path")
        XCTAssertEqual(FileError.renameAdvice(ENOSPC, target: "/x"), "free disk space")
        XCTAssertEqual(FileError.renameAdvice(EIO, target: "/x"), "check /x and its directory")
    }
}
