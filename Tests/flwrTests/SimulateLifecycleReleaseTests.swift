import Foundation
import Synchronization
import XCTest

/// `flwr simulate` as a process: it ends when its server fails (non-zero, with the server's
/// reason) and when it receives SIGTERM, even with clients that never joined. The deadlines
/// are generous bounds that turn a hang into a failure, not measurements.
final class SimulateLifecycleReleaseTests: XCTestCase {
    override func setUpWithError() throws {
        try requireReleaseBuild()
        try requireFashionMNIST()
    }

    /// A running child process whose merged stdout/stderr is collected as it arrives.
    private final class Child: @unchecked Sendable {
        /// The output so far, appended to by the reader thread.
        private final class Buffer: Sendable { let text = Mutex("") }
        let process: Process
        private let buffer = Buffer()

        init(_ arguments: [String]) throws {
            process = Process()
            process.executableURL = URL(fileURLWithPath: try flwrBinaryPath())
            process.arguments = arguments
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = pipe
            let handle = pipe.fileHandleForReading
            try process.run()
            let buffer = self.buffer
            Thread.detachNewThread {
                while true {
                    let chunk = handle.availableData
                    if chunk.isEmpty { return }
                    buffer.text.withLock { $0 += String(decoding: chunk, as: UTF8.self) }
                }
            }
        }

        var output: String { buffer.text.withLock { $0 } }

        /// Waits (polling) until `condition` holds or `deadline` seconds pass; true when it held.
        func wait(upTo deadline: Double, until condition: () -> Bool) -> Bool {
            let end = Date().addingTimeInterval(deadline)
            while Date() < end {
                if condition() { return true }
                Thread.sleep(forTimeInterval: 0.1)
            }
            return condition()
        }

        /// Waits for exit within `deadline` seconds; on a hang, kills the child and returns nil.
        func exitStatus(within deadline: Double) -> Int32? {
            if wait(upTo: deadline, until: { !process.isRunning }) {
                process.waitUntilExit()
                return process.terminationStatus
            }
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            return nil
        }
    }

    private func outDir() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("flwr-simlife-\(UUID().uuidString)").path
    }

    /// 40 clients cannot all complete the handshake within 1 ms: the server stops with "only k of
    /// the 40 required clients connected", and the command exits 1 with that message instead of
    /// waiting forever for the clients that never joined.
    func testServerFailureEndsTheCommandNonZero() throws {
        let dir = outDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let child = try Child(["simulate", "--transport", "tcp", "--clients", "40", "--rounds", "2", "--alpha", "0",
                               "--max-train-examples", "20", "--max-test-examples", "100", "--wait-timeout", "0.001",
                               "--out", dir])
        let status = child.exitStatus(within: 300)
        XCTAssertNotNil(status, "flwr simulate did not exit after its server failed:\n\(child.output)")
        XCTAssertEqual(status, 1, child.output)
        XCTAssertTrue(child.output.contains("of the 40 required clients connected"), child.output)
    }

    /// SIGTERM in the middle of a long run ends it: the command logs the signal and exits.
    func testSIGTERMEndsARunningSimulation() throws {
        let dir = outDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let child = try Child(["simulate", "--transport", "tcp", "--clients", "4", "--rounds", "10000", "--alpha", "0",
                               "--max-train-examples", "20", "--max-test-examples", "100", "--out", dir])
        XCTAssertTrue(child.wait(upTo: 300) { child.output.contains("round 1/10000:") || !child.process.isRunning },
                      child.output)
        XCTAssertTrue(child.process.isRunning, "the run ended before the signal:\n\(child.output)")
        child.process.terminate()
        let status = child.exitStatus(within: 300)
        XCTAssertNotNil(status, "flwr simulate ignored SIGTERM:\n\(child.output)")
        XCTAssertTrue(child.output.contains("stopped on SIGTERM"), child.output)
        XCTAssertFalse(child.output.contains("round 10000/10000"), child.output)
    }
}
