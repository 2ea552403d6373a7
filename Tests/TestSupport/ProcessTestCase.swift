// The fixture of the tests that run real processes (flwr server/client, Python peers): a fresh
// folder per test for their logs and outputs, and every child still running killed after it.
import Foundation
import XCTest

/// A test case whose tests start child processes. `dir` is a fresh temporary folder for each
/// test (logs, histories, models); `spawn` and `child` start a process logging to
/// `dir/<log>.log`; after the test every child still running is killed (SIGKILL, then waited
/// for) and the folder removed. A subclass overriding `setUpWithError` calls `super` after its
/// skips, so a skipped test creates no folder.
open class ProcessTestCase: XCTestCase {
    /// This test's folder (empty before `setUpWithError` and after `tearDown`).
    public private(set) var dir = ""
    /// Every child started by `spawn`, `child` or handed to `track` during this test.
    public private(set) var children: [ChildProcess] = []

    /// The folder's name prefix, to tell the classes' folders apart in the temporary directory.
    open var folderPrefix: String { "flwr-test" }

    override open func setUpWithError() throws {
        try super.setUpWithError()
        dir = try makeTemporaryFolder(folderPrefix)
    }

    override open func tearDown() {
        children.forEach { $0.killHard() }
        children = []
        if !dir.isEmpty { try? FileManager.default.removeItem(atPath: dir) }
        dir = ""
        super.tearDown()
    }

    /// Starts the release `flwr` binary beside the test bundle with `arguments`, its output in
    /// `dir/<log>.log`; `environment` is added to this process's.
    @discardableResult
    public func spawn(_ log: String, _ arguments: [String], environment: [String: String] = [:]) throws -> ChildProcess {
        track(try ChildProcess.flwr(arguments, log: "\(dir)/\(log).log", environment: environment))
    }

    /// Starts `executable` (an absolute path) with `arguments`, its output in `dir/<log>.log`.
    @discardableResult
    public func child(_ log: String, _ executable: String, _ arguments: [String]) throws -> ChildProcess {
        track(try ChildProcess(executable, arguments, log: "\(dir)/\(log).log"))
    }

    /// Adds `process` to the children killed after the test; returns it.
    @discardableResult
    public func track(_ process: ChildProcess) -> ChildProcess {
        children.append(process)
        return process
    }
}

/// A `ProcessTestCase` for federations on real data: skips unless this is an optimised build
/// and Debian's Fashion-MNIST is installed. A subclass with more to require overrides
/// `setUpWithError`, checks, then calls `super`.
open class FederationTestCase: ProcessTestCase {
    override open func setUpWithError() throws {
        try requireReleaseBuild()
        try requireFashionMNIST()
        try super.setUpWithError()
    }
}
