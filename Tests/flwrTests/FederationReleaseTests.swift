import Foundation
import XCTest

/// Real `flwr server` and `flwr client` processes on loopback, on a small slice of real
/// Fashion-MNIST: a full run, a client killed mid-round, and a server killed and resumed.
final class FederationReleaseTests: XCTestCase {
    override func setUpWithError() throws {
        try requireReleaseBuild()
        try requireFashionMNIST()
    }

    /// A child process whose stderr goes to a file we can poll.
    final class Child {
        let process = Process()
        let logPath: String
        init(_ binary: String, _ args: [String], log: String) throws {
            logPath = log
            FileManager.default.createFile(atPath: log, contents: nil)
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = args
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
            process.standardError = handle
            process.standardOutput = handle
            try process.run()
        }
        var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }
        /// Waits for exit (killing the process after `seconds`); returns the exit status.
        func wait(seconds: Double) -> Int32? {
            let deadline = Date().addingTimeInterval(seconds)
            while process.isRunning && Date() < deadline { usleep(50_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit(); return nil }
            return process.terminationStatus
        }
        func killHard() { if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() } }
    }

    private var children: [Child] = []
    private var dir = ""

    override func setUp() {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("flwr-e2e-\(UUID().uuidString)").path
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDown() {
        children.forEach { $0.killHard() }
        children = []
        try? FileManager.default.removeItem(atPath: dir)
    }

    private func freePort() -> Int { Int.random(in: 20_000 ..< 60_000) }

    private func startServer(_ port: Int, rounds: Int, extra: [String] = [], log: String = "server") throws -> Child {
        let c = try Child(try flwrBinaryPath(), ["server", "--host", "127.0.0.1", "--port", "\(port)", "--rounds", "\(rounds)",
                                             "--min-clients", "3", "--max-test-examples", "2000", "--wait-timeout", "60",
                                             "--round-timeout", "120", "--metrics-out", "\(dir)/history.jsonl",
                                             "--model-out", "\(dir)/model.npz", "--plot-out", "\(dir)/accuracy.svg",
                                             "--seed", "7"] + extra, log: "\(dir)/\(log).log")
        children.append(c)
        return c
    }

    private func startClient(_ port: Int, partition: Int, examples: Int = 1500, extra: [String] = []) throws -> Child {
        let c = try Child(try flwrBinaryPath(), ["client", "--server", "127.0.0.1:\(port)", "--partition", "\(partition)",
                                             "--num-partitions", "3", "--max-train-examples", "\(examples)",
                                             "--threads", "1", "--lr", "0.05", "--connect-deadline", "60"] + extra,
                          log: "\(dir)/client\(partition)-\(children.count).log")
        children.append(c)
        return c
    }

    private func history() throws -> [[String: Any]] {
        let text = try String(contentsOfFile: "\(dir)/history.jsonl", encoding: .utf8)
        return try text.split(separator: "\n").map {
            try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any], "not a JSON object: \($0)")
        }
    }

    private func waitFor(_ child: Child, toLog needle: String, seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if child.log.contains(needle) { return true }
            if !child.process.isRunning { return false }
            usleep(50_000)
        }
        return false
    }

    func testServerAndThreeClientProcessesTrainTwoRounds() throws {
        let port = freePort()
        let server = try startServer(port, rounds: 2)
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
        let py = try Child("/usr/bin/env", ["python3", "-c", script, "\(dir)/model.npz"], log: "\(dir)/numpy.log")
        XCTAssertEqual(py.wait(seconds: 60), 0, py.log)
        XCTAssertEqual(py.log.trimmingCharacters(in: .whitespacesAndNewlines), "390410")
    }

    func testClientKilledMidRoundBecomesAFailureThenTooFewIsAClearError() throws {
        let port = freePort()
        let server = try startServer(port, rounds: 2, extra: ["--min-fit-clients", "2", "--wait-timeout", "5"])
        _ = try startClient(port, partition: 0)
        _ = try startClient(port, partition: 1)
        // Partition 2 trains for many epochs, so it is surely mid-fit when killed.
        let slow = try startClient(port, partition: 2, examples: 5000, extra: ["--epochs", "50"])
        XCTAssertTrue(waitFor(server, toLog: "round 1/2: fit on 3", seconds: 60), server.log)
        usleep(500_000)
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
        let port = freePort()
        let checkpoints = "\(dir)/checkpoints"
        let first = try startServer(port, rounds: 4, extra: ["--checkpoint-dir", checkpoints])
        let clients = try (0 ..< 3).map { try startClient(port, partition: $0, examples: 600) }
        XCTAssertTrue(waitFor(first, toLog: "round 2/4: 3 ok", seconds: 180), first.log)
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
