import Foundation
import TestSupport
import XCTest

/// Real `flwr server` and `flwr client` processes on loopback, on a small slice of real
/// Fashion-MNIST: a full run, a client killed mid-round, and a server killed and resumed.
final class FederationReleaseTests: FederationTestCase {
    override var folderPrefix: String { "flwr-e2e" }

    /// A server on `port` (0: the kernel picks; `listeningPort()` reads which from its log).
    private func startServer(_ port: Int = 0, rounds: Int, extra: [String] = [], log: String = "server") throws -> ChildProcess {
        try spawn(log, ["server", "--host", "127.0.0.1", "--port", "\(port)", "--rounds", "\(rounds)",
                                             "--min-clients", "3", "--max-test-examples", "2000", "--wait-timeout", "60",
                                             "--round-timeout", "120", "--metrics-out", "\(dir)/history.jsonl",
                                             "--model-out", "\(dir)/model.npz", "--plot-out", "\(dir)/accuracy.svg",
                                       "--seed", "7"] + extra)
    }

    private func startClient(_ port: Int, partition: Int, examples: Int = 1500, extra: [String] = []) throws -> ChildProcess {
        try spawn("client\(partition)-\(children.count)", ["client", "--server", "127.0.0.1:\(port)", "--partition", "\(partition)",
                                             "--num-partitions", "3", "--max-train-examples", "\(examples)",
                                             "--threads", "1", "--lr", "0.05", "--connect-deadline", "60"] + extra)
    }

    private func history() throws -> [[String: Any]] {
        let text = try String(contentsOfFile: "\(dir)/history.jsonl", encoding: .utf8)
        return try text.split(separator: "\n").map {
            try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any], "not a JSON object: \($0)")
        }
    }

    func testServerAndThreeClientProcessesTrainTwoRounds() throws {
        let server = try startServer(rounds: 2)
        let port = try server.listeningPort()
        let clients = try (0 ..< 3).map { try startClient(port, partition: $0) }
        XCTAssertEqual(server.wait(seconds: 240), 0, "server log:\n\(server.log)")
        for (i, c) in clients.enumerated() { XCTAssertEqual(c.wait(seconds: 30), 0, "client \(i) log:\n\(c.log)") }

        let rows = try history()
        XCTAssertEqual(rows.map { $0["round"] as? Int }, [1, 2])
        for row in rows {
            XCTAssertEqual(Set(row.keys), ["round", "loss", "accuracy", "fit_clients", "failures", "seconds", "bytes_in", "bytes_out"])
            XCTAssertEqual(row["fit_clients"] as? Int, 3)
            XCTAssertEqual(row["failures"] as? Int, 0)
            // Each round moves the model (1.56 MB) to and from 3 clients.
            XCTAssertGreaterThan(row["bytes_out"] as? Int ?? 0, 3 * 1_500_000)
            XCTAssertGreaterThan(row["bytes_in"] as? Int ?? 0, 3 * 1_500_000)
        }
        let accuracy = try XCTUnwrap(rows.last?["accuracy"] as? Double)
        XCTAssertGreaterThan(accuracy, 0.3, "10 classes: chance is 0.1")
        let svg = try String(contentsOfFile: "\(dir)/accuracy.svg", encoding: .utf8)
        XCTAssertTrue(svg.hasPrefix("<svg") || svg.hasPrefix("<?xml"), svg.prefix(80).description)

        // numpy reads the model: the 10 named tensors with PyTorch's shapes, 390,410 values.
        let script = """
            import numpy as np, sys
            m = np.load(sys.argv[1])
            assert m['conv1.weight'].shape == (32, 1, 3, 3), m['conv1.weight'].shape
            assert m['fc.weight'].shape == (10, 256), m['fc.weight'].shape
            assert m['conv1.weight'].dtype == np.float32
            assert np.isfinite(sum(float(np.abs(m[k]).sum()) for k in m.files))
            print(sum(m[k].size for k in m.files))
            """
        let py = try runProgram("python3", ["-c", script, "\(dir)/model.npz"])
        XCTAssertEqual(py.status, 0, py.output)
        XCTAssertEqual(py.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "390410")
    }

    func testClientKilledMidRoundBecomesAFailureThenTooFewIsAClearError() throws {
        let server = try startServer(rounds: 2, extra: ["--min-fit-clients", "2", "--wait-timeout", "5"])
        let port = try server.listeningPort()
        _ = try startClient(port, partition: 0)
        _ = try startClient(port, partition: 1)
        // Partition 2 trains for many epochs, so it is surely mid-fit when killed.
        let slow = try startClient(port, partition: 2, examples: 5000, extra: ["--epochs", "50"])
        XCTAssertTrue(server.waitFor("round 1/2: fit on 3", seconds: 60), server.log)
        slow.killHard()
        // Round 1 completes with the two others; round 2 cannot start with 2 of 3 clients.
        let status = server.wait(seconds: 180)
        XCTAssertNotNil(status, "server hung:\n\(server.log)")
        XCTAssertNotEqual(status, 0)
        let rows = try history()
        XCTAssertEqual(rows.count, 1)
        XCTAssertEqual(rows.first?["fit_clients"] as? Int, 2)
        XCTAssertEqual(rows.first?["failures"] as? Int, 1)
        XCTAssertTrue(server.log.contains("only 2 of the 3 required clients connected"), server.log)
    }

    func testServerKilledAfterRoundTwoResumesAndFinishes() throws {
        let checkpoints = "\(dir)/checkpoints"
        let first = try startServer(rounds: 4, extra: ["--checkpoint-dir", checkpoints])
        // The resumed server binds the same port, where the clients reconnect.
        let port = try first.listeningPort()
        let clients = try (0 ..< 3).map { try startClient(port, partition: $0, examples: 600) }
        XCTAssertTrue(first.waitFor("round 2/4: 3 ok", seconds: 180), first.log)
        first.killHard()
        let done = try history()
        XCTAssertGreaterThanOrEqual(done.count, 2)

        let second = try startServer(port, rounds: 4, extra: ["--checkpoint-dir", checkpoints, "--resume"], log: "server2")
        XCTAssertEqual(second.wait(seconds: 240), 0, "resumed server log:\n\(second.log)")
        XCTAssertTrue(second.log.contains("resuming"), second.log)
        for (i, c) in clients.enumerated() { XCTAssertEqual(c.wait(seconds: 30), 0, "client \(i) log:\n\(c.log)") }
        let rows = try history()
        XCTAssertEqual(rows.map { $0["round"] as? Int }, [1, 2, 3, 4], "rounds before the kill are kept, the rest run once")
        XCTAssertEqual(Array(rows.prefix(2)).map { $0["accuracy"] as? Double }, Array(done.prefix(2)).map { $0["accuracy"] as? Double })
    }
}
