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

    /// 40 clients cannot all complete the handshake within 1 ms: the server stops with "only k of
    /// the 40 required clients connected", and the command exits 1 with that message instead of
    /// waiting forever for the clients that never joined.
    func testServerFailureEndsTheCommandNonZero() throws {
        let dir = outDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let child = try ChildProcess.flwr(["simulate", "--transport", "tcp", "--clients", "40", "--rounds", "2", "--alpha", "0",
                                           "--max-train-examples", "20", "--max-test-examples", "100", "--wait-timeout", "0.001",
                                           "--out", dir], log: dir + ".log")
        defer { try? FileManager.default.removeItem(atPath: dir + ".log") }
        let status = child.wait(seconds: 300)
        XCTAssertNotNil(status, "flwr simulate did not exit after its server failed:\n\(child.log)")
        XCTAssertEqual(status, 1, child.log)
        XCTAssertTrue(child.log.contains("of the 40 required clients connected"), child.log)
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
