import Foundation
import TestSupport
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

        func start(_ role: String, _ env: [String: String], log: String) throws -> ChildProcess {
            // setpriv drops to the image's uid/gid the way `USER 10001` does; env -i leaves only what we pass.
            let envArgs = ["-i"] + env.map { "\($0.key)=\($0.value)" }.sorted()
            if asRoot {
                return try ChildProcess("/usr/bin/setpriv", ["--reuid=10001", "--regid=10001", "--clear-groups", "/usr/bin/env"]
                                        + envArgs + [flwr, role], log: log, directory: workdir)
            }
            return try ChildProcess("/usr/bin/env", envArgs + [flwr, role], log: log, directory: workdir)
        }
        let server = try start("server", [
            "FLWR_HOST": "127.0.0.1", "FLWR_PORT": "0", "FLWR_ROUNDS": "2", "FLWR_MIN_CLIENTS": "2",
            "FLWR_CHECKPOINT_DIR": state + "/checkpoints", "FLWR_RESUME": "true",
            "FLWR_METRICS_OUT": state + "/metrics.jsonl", "FLWR_MODEL_OUT": state + "/model.npz",
            "FLWR_MAX_TEST_EXAMPLES": "500", "FLWR_WAIT_TIMEOUT": "60",
        ], log: root + "/server.log")
        defer { server.killHard() }
        let port = try server.listeningPort()
        let clients = try (0 ..< 2).map { i in
            try start("client", [
                "FLWR_SERVER": "127.0.0.1:\(port)", "FLWR_NUM_PARTITIONS": "2", "JOB_COMPLETION_INDEX": "\(i)",
                "FLWR_MAX_TRAIN_EXAMPLES": "300", "FLWR_THREADS": "1", "FLWR_CONNECT_DEADLINE": "60",
                "FLWR_DP_EPSILON": "8", "FLWR_PRIVACY_BUDGET": "8", "FLWR_LEDGER_DIR": clientState + "/privacy-\(i)",
            ], log: root + "/client\(i).log")
        }
        defer { clients.forEach { $0.killHard() } }
        XCTAssertEqual(server.wait(seconds: 240), 0, server.log)
        for (i, c) in clients.enumerated() {
            let status = c.wait(seconds: 60), log = c.log
            XCTAssertEqual(status, 0, "client \(i):\n\(log)")
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
