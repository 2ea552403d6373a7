// Flower compatibility end to end, with Flower itself as the peer (pip's flwr 1.42.0, PyTorch CPU):
// unmodified Flower NumPyClients (scripts/flower_client.py, a PyTorch twin of cnn4) against
// `flwr server --flower-port` on real Fashion-MNIST partitions; a federation mixing Flower and
// flwr clients; and `flwr client --flower-server` joining Flower's own `start_server`.
import Foundation
import TestSupport
import XCTest

final class FlowerCompatReleaseTests: FederationTestCase {
    override var folderPrefix: String { "flwr-compat" }

    /// Flower's pinned release (with PyTorch's CPU wheel), installed by scripts/test-peers.
    static let flowerVersion = "1.42.0"

    override func setUpWithError() throws {
        let check = try runProgram("/usr/bin/env", ["python3", "-c", "import flwr, torch; print(flwr.__version__)"])
        guard check.status == 0, check.output.split(separator: "\n").last.map(String.init) == Self.flowerVersion else {
            throw XCTSkip("Flower \(Self.flowerVersion) and torch must import (\(check.output)): run scripts/test-peers")
        }
        try super.setUpWithError()
    }

    private var script: String { packageRoot.appendingPathComponent("scripts/flower_client.py").path }

    /// The native and Flower ports a server started with `--port 0 --flower-port 0` bound, from its log.
    private func ports(of server: ChildProcess) throws -> (native: Int, flower: Int) {
        let native = try server.listeningPort()
        guard let flower = server.waitForLog(#"Flower protocol \(FlowerService/Join\) on [^ ]+:(\d+)"#, seconds: 5).flatMap(Int.init)
        else { throw TestFailure("no Flower port in the server log:\n\(server.log)") }
        return (native, flower)
    }

    private func startServer(rounds: Int, minClients: Int) throws -> ChildProcess {
        try child("server", try flwrBinaryPath(), [
            "server", "--host", "127.0.0.1", "--port", "0", "--flower-port", "0", "--rounds", "\(rounds)",
            "--min-clients", "\(minClients)", "--max-test-examples", "1000", "--wait-timeout", "180", "--round-timeout", "300",
            "--lr", "0.05", "--momentum", "0.9", "--batch-size", "32", "--epochs", "1",
            "--metrics-out", "\(dir)/history.jsonl", "--model-out", "\(dir)/model.npz", "--seed", "7"])
    }

    /// An unmodified Flower NumPyClient (PyTorch) on partition `partition`.
    private func startFlowerClient(_ address: String, partition: Int, of n: Int, examples: Int, extra: [String] = []) throws -> ChildProcess {
        try child("flower\(partition)", "/usr/bin/env", ["python3", script, "--server", address, "--partition", "\(partition)",
                                                         "--num-partitions", "\(n)", "--max-train-examples", "\(examples)"] + extra)
    }

    private func startFlwrClient(_ args: [String], partition: Int, of n: Int, examples: Int) throws -> ChildProcess {
        try child("flwr\(partition)", try flwrBinaryPath(), ["client"] + args + [
            "--partition", "\(partition)", "--num-partitions", "\(n)", "--max-train-examples", "\(examples)",
            "--threads", "1", "--connect-deadline", "120"])
    }

    private func history() throws -> [[String: Any]] {
        let text = try String(contentsOfFile: "\(dir)/history.jsonl", encoding: .utf8)
        return try text.split(separator: "\n").map {
            try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any], "not a JSON object: \($0)")
        }
    }

    func testThreeUnmodifiedFlowerClientsTrainThreeRoundsAndTheModelLoadsInPyTorch() throws {
        let server = try startServer(rounds: 3, minClients: 3)
        let flowerPort = try ports(of: server).flower
        // One client sends float64 tensors (accepted and converted); the others float32.
        let clients = try (0 ..< 3).map {
            try startFlowerClient("127.0.0.1:\(flowerPort)", partition: $0, of: 3, examples: 600,
                                  extra: $0 == 2 ? ["--send-dtype", "float64"] : [])
        }
        XCTAssertEqual(server.wait(seconds: 600), 0, "server log:\n\(server.log)")
        for (i, c) in clients.enumerated() {
            XCTAssertEqual(c.wait(seconds: 60), 0, "Flower client \(i) log:\n\(c.log)")
            XCTAssertTrue(c.log.contains("flower client: done"), "Flower client \(i) shut down on ReconnectIns:\n\(c.log)")
        }
        let flowerJoins = server.log.split(separator: "\n").filter { $0.contains("Flower client flower-") && $0.contains(" joined from ") }
        XCTAssertEqual(flowerJoins.count, 3, server.log)

        let rows = try history()
        XCTAssertEqual(rows.map { $0["round"] as? Int }, [1, 2, 3])
        for row in rows {
            XCTAssertEqual(row["fit_clients"] as? Int, 3, "\(row)")
            XCTAssertEqual(row["failures"] as? Int, 0, "\(row)")
        }
        let accuracy = rows.compactMap { $0["accuracy"] as? Double }
        print("Flower clients against flwr server: central accuracy per round \(accuracy)")
        XCTAssertEqual(accuracy.count, 3)
        XCTAssertGreaterThan(accuracy[2], accuracy[0], "accuracy rises over the rounds: \(accuracy)")
        XCTAssertGreaterThan(accuracy[2], 0.5, "10 classes: chance is 0.1; \(accuracy)")

        // numpy reads model.npz, and PyTorch's twin loads it (strict) and scores what we scored
        // on the same 1,000 test images.
        let check = """
            import sys, gzip, numpy as np, torch
            sys.path.insert(0, sys.argv[2])
            from flower_client import Net, load
            m = np.load(sys.argv[1])
            net = Net()
            net.load_state_dict({k: torch.from_numpy(m[k]) for k in m.files}, strict=True)
            x, y = load("t10k")
            with torch.no_grad():
                print(float((net(x[:1000]).argmax(1) == y[:1000]).float().mean()))
            """
        let py = try child("torch", "/usr/bin/env", ["python3", "-c", check, "\(dir)/model.npz", packageRoot.appendingPathComponent("scripts").path])
        XCTAssertEqual(py.wait(seconds: 120), 0, py.log)
        let torchAccuracy = try XCTUnwrap(Double(py.log.split(separator: "\n").last.map(String.init) ?? ""), py.log)
        XCTAssertEqual(torchAccuracy, accuracy[2], accuracy: 0.005, "PyTorch scores the saved model as flwr did")
    }

    func testMixedFederationOfTwoFlowerAndTwoFlwrClients() throws {
        let server = try startServer(rounds: 2, minClients: 4)
        let (port, flowerPort) = try ports(of: server)
        let flower = try (0 ..< 2).map { try startFlowerClient("127.0.0.1:\(flowerPort)", partition: $0, of: 4, examples: 400) }
        let ours = try (2 ..< 4).map { try startFlwrClient(["--server", "127.0.0.1:\(port)"], partition: $0, of: 4, examples: 400) }
        XCTAssertEqual(server.wait(seconds: 600), 0, "server log:\n\(server.log)")
        for c in flower + ours { XCTAssertEqual(c.wait(seconds: 60), 0, c.log) }
        let rows = try history()
        XCTAssertEqual(rows.map { $0["round"] as? Int }, [1, 2])
        for row in rows {
            XCTAssertEqual(row["fit_clients"] as? Int, 4, "both kinds trained in every round: \(row)")
            XCTAssertEqual(row["failures"] as? Int, 0, "\(row)")
        }
        let flowerJoins = server.log.split(separator: "\n").filter { $0.contains("Flower client flower-") && $0.contains(" joined from ") }
        XCTAssertEqual(flowerJoins.count, 2, "two Flower clients joined:\n\(server.log)")
        let accuracy = rows.compactMap { $0["accuracy"] as? Double }
        XCTAssertEqual(accuracy.count, 2)
        XCTAssertGreaterThan(accuracy.last ?? 0, accuracy.first ?? 1, "the mixed federation learns: \(accuracy)")
        XCTAssertGreaterThan(accuracy.last ?? 0, 0.2, "10 classes: chance is 0.1; \(accuracy)")
    }

    func testFlwrClientJoinsFlowersOwnStartServer() throws {
        let port = try reserveLoopbackPort()  // Flower's start_server takes a fixed address
        let server = try child("flower-server", "/usr/bin/env", [
            "python3", packageRoot.appendingPathComponent("scripts/flower_server.py").path, "--address", "127.0.0.1:\(port)",
            "--rounds", "2", "--clients", "2", "--history-out", "\(dir)/flower-history.json"])
        let python = try startFlowerClient("127.0.0.1:\(port)", partition: 0, of: 2, examples: 200)
        let ours = try startFlwrClient(["--flower-server", "127.0.0.1:\(port)", "--lr", "0.05"], partition: 1, of: 2, examples: 300)
        XCTAssertEqual(server.wait(seconds: 600), 0, "Flower server log:\n\(server.log)")
        XCTAssertEqual(python.wait(seconds: 60), 0, python.log)
        XCTAssertEqual(ours.wait(seconds: 60), 0, "flwr client log:\n\(ours.log)")
        let data = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/flower-history.json"))
        let history = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        let rounds = try XCTUnwrap(history["rounds"] as? [String: Any])
        let fits = try XCTUnwrap(rounds["fit"] as? [[String: Any]])
        XCTAssertEqual(fits.count, 2, "\(history)")
        for fit in fits {
            XCTAssertEqual(fit["results"] as? Int, 2, "both clients answered FitIns: \(fit)")
            XCTAssertEqual(fit["failures"] as? Int, 0, "\(fit)")
            // 200 examples: the Python client; 300: ours.
            XCTAssertEqual((fit["num_examples"] as? [Int])?.sorted(), [200, 300], "\(fit)")
        }
        let evaluations = try XCTUnwrap(rounds["evaluate"] as? [[String: Any]])
        XCTAssertEqual(evaluations.map { $0["results"] as? Int }, [2, 2], "both clients evaluated: \(evaluations)")
        XCTAssertTrue(ours.log.contains("round 2: trained on 300 examples"), ours.log)
    }

    /// A flwr client training with record-level DP-SGD under Flower's own server reports its site's
    /// ε as the fit metric `dp_sgd_epsilon`, which Flower's fit-metrics aggregation reads: Flower's
    /// history holds it for both rounds, equal to our accountant's ε after 1 and 2 epochs of the
    /// site's 300 records (batch 50, σ 1.1), weighted by Flower with 300 of the round's 500 examples.
    func testDPSGDSiteReportsItsEpsilonToFlowersStrategy() throws {
        let port = try reserveLoopbackPort()  // Flower's start_server takes a fixed address
        let server = try child("flower-server", "/usr/bin/env", [
            "python3", packageRoot.appendingPathComponent("scripts/flower_server.py").path, "--address", "127.0.0.1:\(port)",
            "--rounds", "2", "--clients", "2", "--history-out", "\(dir)/flower-history.json"])
        let python = try startFlowerClient("127.0.0.1:\(port)", partition: 0, of: 2, examples: 200)
        let ours = try startFlwrClient(["--flower-server", "127.0.0.1:\(port)", "--lr", "0.05", "--batch-size", "50",
                                        "--dp-sgd", "--noise-multiplier", "1.1", "--max-grad-norm", "1", "--target-epsilon", "20",
                                        "--ledger-dir", "\(dir)/ledger"], partition: 1, of: 2, examples: 300)
        XCTAssertEqual(server.wait(seconds: 600), 0, "Flower server log:\n\(server.log)")
        XCTAssertEqual(python.wait(seconds: 60), 0, python.log)
        XCTAssertEqual(ours.wait(seconds: 60), 0, "flwr client log:\n\(ours.log)")
        let data = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/flower-history.json"))
        let history = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        let fitMetrics = try XCTUnwrap(history["metrics_distributed_fit"] as? [String: Any], "\(history)")
        let series = try XCTUnwrap(fitMetrics["dp_sgd_epsilon"] as? [[Any]], "no dp_sgd_epsilon in Flower's fit metrics: \(fitMetrics)")
        XCTAssertEqual(series.count, 2, "\(series)")
        for (i, point) in series.enumerated() {
            let flwr = try flwrBinaryPath()
            let r = try runProgram(flwr, ["privacy", "epsilon", "--mechanism", "dp-sgd", "--dataset-size", "300", "--batch-size", "50",
                                          "--epochs", "\(i + 1)", "--noise-multiplier", "1.1", "--json"])
            XCTAssertEqual(r.status, 0, r.output)
            let expected = try XCTUnwrap((try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Double])?["epsilon"])
            XCTAssertEqual(point.first as? Int, i + 1, "\(series)")
            let reported = try XCTUnwrap(point.last as? Double, "\(series)")
            XCTAssertEqual(reported, expected * 300 / 500, accuracy: expected * 1e-6, "round \(i + 1): \(series)")
        }
    }

    /// A CA and a server certificate for 127.0.0.1 made with Debian's openssl (a peer nobody here wrote).
    private func makeCertificates() throws {
        if !FileManager.default.isExecutableFile(atPath: "/usr/bin/openssl") {
            let r = try runProgram(packageRoot.appendingPathComponent("scripts/bootstrap").path, ["openssl"])
            XCTAssertEqual(r.status, 0, r.output)
        }
        try "subjectAltName=IP:127.0.0.1,DNS:localhost\n".write(toFile: "\(dir)/san.ext", atomically: true, encoding: .utf8)
        for args in [["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "\(dir)/ca.key", "-out", "\(dir)/ca.pem", "-days", "1", "-subj", "/CN=flwr-test-ca"],
                     ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "\(dir)/server.key", "-out", "\(dir)/server.csr", "-subj", "/CN=localhost"],
                     ["x509", "-req", "-in", "\(dir)/server.csr", "-CA", "\(dir)/ca.pem", "-CAkey", "\(dir)/ca.key", "-CAcreateserial",
                      "-out", "\(dir)/server.pem", "-days", "1", "-extfile", "\(dir)/san.ext"]] {
            let r = try runProgram("/usr/bin/openssl", args)
            XCTAssertEqual(r.status, 0, r.output)
        }
    }

    /// TLS on --flower-port: a Python Flower client (root_certificates) and `flwr client
    /// --flower-server --flower-root-cert` train one round together through it.
    func testFlowerPortWithTLS() throws {
        try makeCertificates()
        let server = try child("server", try flwrBinaryPath(), [
            "server", "--host", "127.0.0.1", "--port", "0", "--flower-port", "0", "--rounds", "1",
            "--min-clients", "2", "--max-test-examples", "500", "--wait-timeout", "180", "--round-timeout", "300",
            "--flower-tls-cert", "\(dir)/server.pem", "--flower-tls-key", "\(dir)/server.key",
            "--metrics-out", "\(dir)/history.jsonl", "--seed", "7"])
        let flowerPort = try ports(of: server).flower
        let python = try startFlowerClient("127.0.0.1:\(flowerPort)", partition: 0, of: 2, examples: 200, extra: ["--root-cert", "\(dir)/ca.pem"])
        let ours = try startFlwrClient(["--flower-server", "127.0.0.1:\(flowerPort)", "--flower-root-cert", "\(dir)/ca.pem"],
                                       partition: 1, of: 2, examples: 200)
        XCTAssertEqual(server.wait(seconds: 600), 0, "server log:\n\(server.log)")
        XCTAssertEqual(python.wait(seconds: 60), 0, python.log)
        XCTAssertEqual(ours.wait(seconds: 60), 0, ours.log)
        XCTAssertTrue(server.log.contains("with TLS"), server.log)
        let rows = try history()
        XCTAssertEqual(rows.first?["fit_clients"] as? Int, 2, "\(rows)")
        XCTAssertEqual(rows.first?["failures"] as? Int, 0, "\(rows)")
    }

    func testAFlwrClientWithAnotherModelThanFlowersIsAClearError() throws {
        let port = try reserveLoopbackPort()  // Flower's start_server takes a fixed address
        let server = try child("flower-server", "/usr/bin/env", [
            "python3", packageRoot.appendingPathComponent("scripts/flower_server.py").path, "--address", "127.0.0.1:\(port)",
            "--rounds", "1", "--clients", "1", "--initial-cnn4"])
        let ours = try startFlwrClient(["--flower-server", "127.0.0.1:\(port)", "--model", "lenet5"], partition: 1, of: 2, examples: 100)
        XCTAssertNotEqual(ours.wait(seconds: 300), 0, ours.log)
        XCTAssertTrue(ours.log.contains("does not fit this client's model"), ours.log)
        XCTAssertTrue(ours.log.contains("run the same model on both sides"), ours.log)
        server.killHard()
    }
}
