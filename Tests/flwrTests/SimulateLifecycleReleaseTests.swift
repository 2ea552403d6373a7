import Foundation
import TestSupport
import XCTest

/// `flwr simulate` as a process: it ends when its server fails (non-zero, with the server's
/// reason) and when it receives SIGTERM, even with clients that never joined. The deadlines
/// are generous bounds that turn a hang into a failure, not measurements.
final class SimulateLifecycleReleaseTests: XCTestCase {
    override func setUpWithError() throws {
        try requireReleaseBuild()
        try requireFashionMNIST()
    }

    private func outDir() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("flwr-simlife-\(UUID().uuidString)").path
    }

    /// The server fails at the start of its run, while its 40 loopback clients are still
    /// connecting: `history.jsonl` in --out is a directory, so the server's first write of it
    /// fails. The command exits 1 with the server's reason (what was wrong and what to do)
    /// instead of waiting for the clients that never joined. (A failure caused by a file, not by
    /// timing: 40 clients missing a 1 ms wait could, on a fast moment, all make it.)
    func testServerFailureEndsTheCommandNonZero() throws {
        let dir = outDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/history.jsonl", withIntermediateDirectories: true)
        let child = try ChildProcess.flwr(["simulate", "--transport", "tcp", "--clients", "40", "--rounds", "2", "--alpha", "0",
                                           "--max-train-examples", "20", "--max-test-examples", "100",
                                           "--out", dir], log: dir + ".log")
        defer { try? FileManager.default.removeItem(atPath: dir + ".log") }
        let status = child.wait(seconds: 300)
        XCTAssertNotNil(status, "flwr simulate did not exit after its server failed:\n\(child.log)")
        XCTAssertEqual(status, 1, child.log)
        XCTAssertTrue(child.log.contains("history not written"), child.log)
        XCTAssertTrue(child.log.contains("history.jsonl is a directory: remove it or choose another output path"), child.log)
        XCTAssertFalse(child.log.contains("round 1/2:"), "no round may complete without its history:\n\(child.log)")
    }

    /// SIGTERM in the middle of a long run ends it: the command logs the signal and exits.
    func testSIGTERMEndsARunningSimulation() throws {
        let dir = outDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let child = try ChildProcess.flwr(["simulate", "--transport", "tcp", "--clients", "4", "--rounds", "10000", "--alpha", "0",
                                           "--max-train-examples", "20", "--max-test-examples", "100", "--out", dir],
                                          log: dir + ".log")
        defer { try? FileManager.default.removeItem(atPath: dir + ".log") }
        XCTAssertTrue(child.waitFor("round 1/10000:", seconds: 300), child.log)
        XCTAssertTrue(child.isRunning, "the run ended before the signal:\n\(child.log)")
        child.send(SIGTERM)
        let status = child.wait(seconds: 300)
        XCTAssertNotNil(status, "flwr simulate ignored SIGTERM:\n\(child.log)")
        XCTAssertEqual(status, 143, "128 + SIGTERM:\n\(child.log)")
        XCTAssertTrue(child.log.contains("stopped on SIGTERM"), child.log)
        XCTAssertFalse(child.log.contains("round 10000/10000"), child.log)
    }

    /// SIGTERM during a virtual-mode run (1,000 virtual clients, 10 a round) ends it with the
    /// documented status 143 after the first round has started; SIGINT (Ctrl-C) with 130.
    func testSignalsEndAVirtualSimulationWithTheDocumentedStatus() throws {
        for (signal, name, expected) in [(SIGTERM, "SIGTERM", Int32(143)), (SIGINT, "SIGINT", Int32(130))] {
            let dir = outDir()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let child = try ChildProcess.flwr(["simulate", "--transport", "virtual", "--clients", "1000", "--clients-per-round", "10",
                                               "--rounds", "10000", "--alpha", "0", "--max-train-examples", "5",
                                               "--max-test-examples", "100", "--out", dir], log: dir + ".log")
            defer { try? FileManager.default.removeItem(atPath: dir + ".log") }
            XCTAssertTrue(child.waitFor("round 1/10000: fit on 10 of 1000 clients", seconds: 300), child.log)
            XCTAssertTrue(child.isRunning, "the run ended before the signal:\n\(child.log)")
            child.send(signal)
            let status = child.wait(seconds: 300)
            XCTAssertNotNil(status, "flwr simulate --transport virtual ignored \(name):\n\(child.log)")
            XCTAssertEqual(status, expected, child.log)
            XCTAssertTrue(child.log.contains("stopped on \(name)"), child.log)
            XCTAssertFalse(child.log.contains("round 10000/10000"), child.log)
        }
    }
}
