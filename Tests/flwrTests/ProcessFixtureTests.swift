// The process fixture itself (TestSupport's ProcessTestCase and ChildProcess.waitForLog): a
// folder per test, its children killed and the folder removed after it; waits for a log line
// that wake on the log's change and end at the child's exit. The children are /bin/sh scripts;
// their `sleep` stands for a program that is slow to speak or never ends.
import Foundation
import TestSupport
import XCTest

final class ProcessFixtureTests: ProcessTestCase {
    override var folderPrefix: String { "flwr-fixture" }

    private func shell(_ log: String, _ script: String) throws -> ChildProcess {
        try child(log, "/bin/sh", ["-c", script])
    }

    func testLineWrittenLaterIsFoundAndItsGroupReturned() throws {
        let c = try shell("late", "sleep 0.3; echo 'listening on 127.0.0.1:4242; ready'; exec sleep 600")
        XCTAssertEqual(try c.listeningPort(seconds: 120), 4242)
        XCTAssertTrue(c.isRunning)
    }

    /// A child that exits without the line ends the wait (nil) at its exit, however long the
    /// timeout; a line written just before the exit is still found.
    func testExitEndsTheWaitAndTheLastLineBeforeItCounts() throws {
        let quiet = try shell("quiet", "echo nothing here")
        XCTAssertNil(quiet.waitForLog("never printed", seconds: 600))
        XCTAssertEqual(quiet.wait(seconds: 60), 0)
        let last = try shell("last", "echo 'result 17'; exit 3")
        XCTAssertEqual(last.waitForLog(#"result (\d+)"#, seconds: 600), "17")
        XCTAssertEqual(last.wait(seconds: 60), 3)
    }

    func testTearDownKillsChildrenAndRemovesTheFolder() throws {
        let folder = dir
        var isDirectory: ObjCBool = false
        XCTAssertTrue(FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory) && isDirectory.boolValue, folder)
        let c = try shell("long", "echo started; exec sleep 600")
        XCTAssertTrue(c.waitFor("started", seconds: 120), c.log)
        XCTAssertTrue(FileManager.default.fileExists(atPath: folder + "/long.log"))
        XCTAssertEqual(children.count, 1)
        tearDown()
        XCTAssertFalse(c.isRunning)
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder))
        XCTAssertEqual(dir, "")
        XCTAssertTrue(children.isEmpty)
    }
}
