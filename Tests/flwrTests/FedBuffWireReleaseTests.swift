import Foundation
import TestSupport
import XCTest

/// `flwr server --mode async`: FedBuff on the real clock, a real server process and three real
/// client processes on loopback, on a slice of real Fashion-MNIST.
final class FedBuffWireReleaseTests: FederationTestCase {
    override var folderPrefix: String { "flwr-fedbuff" }

    /// C = 3 clients always training, an update every K = 2 results, 4 updates: every update
    /// applies exactly 2 results, the client left out of an update trains on and arrives stale,
    /// the model learns, and every client is told to finish.
    func testAsyncServerAppliesBufferedUpdatesFromRealClients() throws {
        let server = try spawn("server", ["server", "--host", "127.0.0.1", "--port", "0", "--rounds", "4",
                                            "--mode", "async", "--concurrency", "3", "--buffer-size", "2",
                                            "--min-clients", "3", "--max-test-examples", "2000", "--wait-timeout", "60",
                                            "--round-timeout", "120", "--metrics-out", "\(dir)/history.jsonl",
                                            "--model-out", "\(dir)/model.npz", "--plot-out", "\(dir)/accuracy.svg", "--seed", "7"])
        let port = try server.listeningPort()
        let clients = try (0 ..< 3).map { p in
            try spawn("client\(p)", ["client", "--server", "127.0.0.1:\(port)", "--partition", "\(p)",
                                           "--num-partitions", "3", "--max-train-examples", "1000",
                                           "--threads", "1", "--lr", "0.05", "--connect-deadline", "60"])
        }
        XCTAssertEqual(server.wait(seconds: 300), 0, "server log:\n\(server.log)")
        for (i, c) in clients.enumerated() { XCTAssertEqual(c.wait(seconds: 60), 0, "client \(i) log:\n\(c.log)") }

        let text = try String(contentsOfFile: "\(dir)/history.jsonl", encoding: .utf8)
        let rows = try text.split(separator: "\n").map {
            try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
        XCTAssertEqual(rows.map { $0["round"] as? Int }, [1, 2, 3, 4])
        var staleness = 0.0, bytesIn = 0
        for row in rows {
            XCTAssertEqual(row["fit_clients"] as? Int, 2)
            XCTAssertEqual(row["failures"] as? Int, 0)
            XCTAssertNil(row["virtual_time"], "the real clock has no virtual time")
            staleness += try XCTUnwrap(row["staleness"] as? Double)
            bytesIn += row["bytes_in"] as? Int ?? 0
        }
        // The 8 applied results are 8 uploads of the CNN (1.56 MB each), all inside the updates' spans.
        XCTAssertGreaterThan(bytesIn, 8 * 1_500_000)
        XCTAssertGreaterThan(staleness, 0, "3 clients in flight for a buffer of 2: someone arrives stale")
        let accuracy = try XCTUnwrap(rows.last?["accuracy"] as? Double)
        XCTAssertGreaterThan(accuracy, 0.2, "10 classes: chance is 0.1")
        XCTAssertTrue(server.log.contains("FedBuff: 3 clients training at a time"), server.log)
    }

    func testAsyncServerRefusesAStrategyThatAggregatesItself() throws {
        let run = try runProgram(try flwrBinaryPath(), ["server", "--mode", "async", "--strategy", "krum", "--host", "127.0.0.1", "--port", "0",
                                                        "--rounds", "1", "--concurrency", "2", "--buffer-size", "2"])
        XCTAssertNotEqual(run.status, 0)
        XCTAssertTrue(run.output.contains("--strategy krum has no place in it"), run.output)
    }
}
