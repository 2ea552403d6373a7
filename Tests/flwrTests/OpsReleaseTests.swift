import Foundation
import TestSupport
import XCTest

/// A real federation (server + 2 clients on a slice of Fashion-MNIST) with the operations
/// features on, checked by peers nobody here wrote: prometheus_client's text parser reads
/// /metrics before and after, TensorBoard's EventAccumulator reads the event file and must agree
/// with history.jsonl, and every log line of `--log-format json` parses as JSON.
final class OpsReleaseTests: FederationTestCase {
    override var folderPrefix: String { "flwr-ops" }

    override func setUpWithError() throws {
        try Self.installPeers()
        try super.setUpWithError()
    }

    static let peers = ["prometheus_client==0.26.0", "tensorboard==2.21.0"]

    /// prometheus_client and tensorboard (scripts/test-peers installs them); skips otherwise.
    static func installPeers() throws {
        if try runProgram("/usr/bin/env", ["python3", "-c", "import prometheus_client, tensorboard"]).status == 0 { return }
        throw XCTSkip("\(peers) are not importable: run scripts/test-peers")
    }

    /// The value of the unlabelled sample `name` in a Prometheus text body.
    static func value(_ name: String, _ body: String) -> Int? {
        body.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ")[1]) }.map { Int($0) }
    }

    private func check(_ arguments: [String]) throws -> String {
        let r = try runProgram("/usr/bin/env", ["python3", packageRoot.appendingPathComponent("scripts/peers/ops_check.py").path]
                               + arguments)
        XCTAssertEqual(r.status, 0, r.output)
        return r.output
    }

    private func save(_ text: String, _ path: String) throws -> String {
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func testMetricsTensorBoardAndJSONLogsOfAFederation() throws {
        let rounds = 3
        let server = try spawn("server", ["server", "--host", "127.0.0.1", "--port", "0", "--http-port", "0", "--rounds", "\(rounds)",
                                   "--min-clients", "2", "--max-test-examples", "500", "--wait-timeout", "120",
                                   "--round-timeout", "120", "--metrics-out", dir + "/history.jsonl",
                                   "--tensorboard-dir", dir + "/tb", "--linger", "--log-format", "json", "--seed", "7"])
        let http = try XCTUnwrap(server.waitForLog(#"operations HTTP on 127\.0\.0\.1:(\d+)"#, seconds: 120), server.log)
        let wirePort = try XCTUnwrap(server.waitForLog(#"listening on 127\.0\.0\.1:(\d+);"#, seconds: 120), server.log)
        let base = "http://127.0.0.1:\(http)"
        XCTAssertEqual(try curlUntil(base + "/readyz", seconds: 60) { $0.code == 200 }.code, 200)
        let before = try save(try curl(base + "/metrics").body, dir + "/before.prom")

        var clients: [ChildProcess] = []
        for i in 0 ..< 2 {
            let c = try spawn("client\(i)", ["client", "--server", "127.0.0.1:\(wirePort)", "--partition", "\(i)", "--num-partitions", "2",
                                  "--max-train-examples", "600", "--threads", "1", "--lr", "0.05", "--connect-deadline", "60",
                                  "--http-port", "0", "--http-host", "127.0.0.1", "--dp-epsilon", "8",
                                  "--ledger-dir", dir + "/ledger-\(i)"])
            clients.append(c)
        }
        // Client 0: scraped before it trained and once it has trained (connected, counters up).
        let clientHTTP = try XCTUnwrap(clients[0].waitForLog(#"operations HTTP on 127\.0\.0\.1:(\d+)"#, seconds: 120), clients[0].log)
        let clientBase = "http://127.0.0.1:\(clientHTTP)"
        let clientBefore = try save(try curlUntil(clientBase + "/metrics", seconds: 30) { $0.code == 200 }.body,
                                    dir + "/client-before.prom")
        let trained = try curlUntil(clientBase + "/metrics", seconds: 300) { (Self.value("flwr_client_fits_total", $0.body) ?? 0) >= 1 }
        let fits = try XCTUnwrap(Self.value("flwr_client_fits_total", trained.body), "client 0 never trained:\n\(clients[0].log)")
        let clientAfter = try save(trained.body, dir + "/client-after.prom")
        XCTAssertEqual(try curl(clientBase + "/readyz").body, "ready\n", "a client that trained is connected")

        // The federation ends; the lingering server still answers.
        XCTAssertNotNil(server.waitForLog("(training complete; lingering)", seconds: 600), server.log)
        for c in clients { XCTAssertEqual(c.wait(seconds: 120), 0, c.log) }
        let after = try save(try curl(base + "/metrics").body, dir + "/after.prom")

        let serverFamilies = ["flwr_rounds_completed_total:counter", "flwr_current_round:gauge", "flwr_rounds_planned:gauge",
                              "flwr_round_duration_seconds:histogram", "flwr_clients_connected:gauge",
                              "flwr_fit_results_total:counter", "flwr_fit_failures_total:counter",
                              "flwr_evaluate_results_total:counter", "flwr_evaluate_failures_total:counter",
                              "flwr_received_bytes_total:counter", "flwr_sent_bytes_total:counter", "flwr_loss:gauge",
                              "flwr_accuracy_ratio:gauge", "flwr_privacy_epsilon:gauge"]
        let report = try check(["metrics", before, after] + serverFamilies + ["--moves", "flwr_rounds_completed_total",
                                "flwr_current_round", "flwr_round_duration_seconds", "flwr_fit_results_total",
                                "flwr_received_bytes_total", "flwr_sent_bytes_total", "flwr_loss", "flwr_accuracy_ratio",
                                "flwr_privacy_epsilon"])
        XCTAssertTrue(report.contains("\"flwr_rounds_completed_total\": {\"after\": 3.0, \"before\": 0.0}"), report)
        XCTAssertTrue(report.contains("\"flwr_privacy_epsilon\": {\"after\": 8.0"), report)

        let clientFamilies = ["flwr_client_connected:gauge", "flwr_client_fit_duration_seconds:histogram",
                              "flwr_client_fits_total:counter", "flwr_client_fit_failures_total:counter",
                              "flwr_client_evaluations_total:counter", "flwr_client_examples_trained_total:counter",
                              "flwr_client_images_per_second:gauge", "flwr_client_privacy_epsilon:gauge"]
        let clientReport = try check(["metrics", clientBefore, clientAfter] + clientFamilies + ["--moves",
                                      "flwr_client_fit_duration_seconds", "flwr_client_fits_total",
                                      "flwr_client_examples_trained_total", "flwr_client_images_per_second"])
        // Each fit: 600 examples, one epoch (the client's default).
        XCTAssertTrue(clientReport.contains("\"flwr_client_examples_trained_total\": {\"after\": \(600 * fits).0, \"before\": 0.0}"), clientReport)

        let tb = try check(["tensorboard", dir + "/tb", dir + "/history.jsonl", "8"])
        XCTAssertTrue(tb.contains("\"checked\": \(3 * rounds)"), tb)

        server.send(SIGTERM)
        XCTAssertEqual(server.wait(seconds: 60), 0, server.log)
        let lines = server.log.split(separator: "\n")
        XCTAssertGreaterThan(lines.count, 5)
        for line in lines {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            XCTAssertNotNil(object?["time"] as? String, "not a JSON log line: \(line)")
            XCTAssertTrue((object?["module"] as? String ?? "").hasPrefix("flwr"), "\(line)")
        }
    }

    /// `flwr simulate` and `flwr train` write the same scalars as their history files.
    func testSimulateAndTrainEventFilesMatchTheirHistories() throws {
        let flwr = try flwrBinaryPath()
        let sim = try runProgram(flwr, ["simulate", "--clients", "2", "--rounds", "2", "--max-train-examples", "300",
                                        "--max-test-examples", "300", "--threads", "1", "--out", dir + "/sim",
                                        "--tensorboard-dir", dir + "/sim-tb"])
        XCTAssertEqual(sim.status, 0, sim.output)
        let simCheck = try check(["tensorboard", dir + "/sim-tb", dir + "/sim/history.jsonl"])
        XCTAssertTrue(simCheck.contains("\"checked\": 6"), simCheck)

        let train = try runProgram(flwr, ["train", "--epochs", "2", "--max-train-examples", "500", "--threads", "1",
                                          "--metrics-out", dir + "/train.jsonl", "--tensorboard-dir", dir + "/train-tb"])
        XCTAssertEqual(train.status, 0, train.output)
        let trainCheck = try check(["tensorboard", dir + "/train-tb", dir + "/train.jsonl"])
        XCTAssertTrue(trainCheck.contains("\"checked\": 6"), trainCheck)
        XCTAssertTrue(trainCheck.contains("test_loss"), trainCheck)
    }
}
