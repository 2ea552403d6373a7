import Foundation
import XCTest

/// The container's runtime contract without a Docker engine: the release binary started the way
/// the image's entrypoint starts it (an environment of FLWR_* variables only, plus the Indexed
/// Job's JOB_COMPLETION_INDEX; a non-root user; a read-only working directory; only the state
/// folder writable) completes a small federation, with the clients privatising their data.
final class ContainerContractReleaseTests: XCTestCase {
    override func setUpWithError() throws {
        try requireReleaseBuild()
        try requireFashionMNIST()
    }

    func testEntrypointContractCompletesAFederation() throws {
        let flwr = try flwrBinaryPath()
        let root = "/tmp/flwr-contract-\(UUID().uuidString)"
        let fm = FileManager.default
        let workdir = root + "/work", state = root + "/state", clientState = root + "/client"
        for d in [root, workdir, state, clientState] { try fm.createDirectory(atPath: d, withIntermediateDirectories: true) }
        defer { try? fm.removeItem(atPath: root) }
        let asRoot = getuid() == 0
        // The image's user (10001) owns only the state folders; the working directory is read-only.
        if asRoot {
            for d in [state, clientState] { XCTAssertEqual(chown(d, 10001, 10001), 0) }
            XCTAssertEqual(chmod(root, 0o755), 0)
        }
        XCTAssertEqual(chmod(workdir, 0o555), 0)

        let port = Int.random(in: 20_000 ..< 60_000)
        func start(_ role: String, _ env: [String: String], log: String) throws -> Process {
            let p = Process()
            // setpriv drops to the image's uid/gid the way `USER 10001` does; env -i leaves only what we pass.
            let envArgs = ["-i"] + env.map { "\($0.key)=\($0.value)" }.sorted()
            if asRoot {
                p.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
                p.arguments = ["--reuid=10001", "--regid=10001", "--clear-groups", "/usr/bin/env"] + envArgs + [flwr, role]
            } else {
                p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
                p.arguments = envArgs + [flwr, role]
            }
            p.currentDirectoryURL = URL(fileURLWithPath: workdir)
            fm.createFile(atPath: log, contents: nil)
            let h = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
            p.standardOutput = h
            p.standardError = h
            try p.run()
            return p
        }
        let server = try start("server", [
            "FLWR_HOST": "127.0.0.1", "FLWR_PORT": "\(port)", "FLWR_ROUNDS": "2", "FLWR_MIN_CLIENTS": "2",
            "FLWR_CHECKPOINT_DIR": state + "/checkpoints", "FLWR_RESUME": "true",
            "FLWR_METRICS_OUT": state + "/metrics.jsonl", "FLWR_MODEL_OUT": state + "/model.npz",
            "FLWR_MAX_TEST_EXAMPLES": "500", "FLWR_WAIT_TIMEOUT": "60",
        ], log: root + "/server.log")
        let clients = try (0 ..< 2).map { i in
            try start("client", [
                "FLWR_SERVER": "127.0.0.1:\(port)", "FLWR_NUM_PARTITIONS": "2", "JOB_COMPLETION_INDEX": "\(i)",
                "FLWR_MAX_TRAIN_EXAMPLES": "300", "FLWR_THREADS": "1", "FLWR_CONNECT_DEADLINE": "60",
                "FLWR_DP_EPSILON": "8", "FLWR_PRIVACY_BUDGET": "8", "FLWR_LEDGER_DIR": clientState + "/privacy-\(i)",
            ], log: root + "/client\(i).log")
        }
        let deadline = Date().addingTimeInterval(240)
        while (server.isRunning || clients.contains { $0.isRunning }) && Date() < deadline { usleep(100_000) }
        for p in [server] + clients where p.isRunning { p.terminate() }
        let serverLog = (try? String(contentsOfFile: root + "/server.log", encoding: .utf8)) ?? ""
        XCTAssertEqual(server.terminationStatus, 0, serverLog)
        for (i, c) in clients.enumerated() {
            let log = (try? String(contentsOfFile: root + "/client\(i).log", encoding: .utf8)) ?? ""
            XCTAssertEqual(c.terminationStatus, 0, log)
            XCTAssertTrue(log.contains("Laplace ε=8"), "client \(i) did not privatise its data:\n\(log)")
            XCTAssertTrue(fm.fileExists(atPath: clientState + "/privacy-\(i)/privacy-ledger.json"), log)
        }
        let metrics = try String(contentsOfFile: state + "/metrics.jsonl", encoding: .utf8)
        XCTAssertEqual(metrics.split(separator: "\n").count, 2, metrics)
        XCTAssertTrue(fm.fileExists(atPath: state + "/checkpoints/checkpoint.flwr"))
        XCTAssertTrue(fm.fileExists(atPath: state + "/model.npz"))
        // Nothing was written to the read-only working directory.
        XCTAssertEqual(try fm.contentsOfDirectory(atPath: workdir), [])
    }
}
