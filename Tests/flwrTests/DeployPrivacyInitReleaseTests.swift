// What `flwr deploy`'s privatize init container and an edge client do, as processes on real files
// written by numpy: the release of a site's whole folder is charged once, a re-run after a restart
// (--resume) re-creates the very same bytes and spends nothing, a fresh release would be refused,
// and a client with no partition flags trains on every example of its folder, with the readers'
// own errors on bad folders.
import Foundation
import TestSupport
import XCTest

final class DeployPrivacyInitReleaseTests: XCTestCase {
    override func setUpWithError() throws {
        try requireReleaseBuild()
    }

    /// A site folder: partition.npz (37 uint8 images 1×16×16, labels 0..2) and test.npz (5), by numpy
    /// (16×16: the default cnn4's four 2×2 pools need at least that).
    private func siteFolder() throws -> String {
        let dir = NSTemporaryDirectory() + "flwr-site-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        let script = """
            import numpy as np
            rng = np.random.default_rng(7)
            for name, n in (('partition', 37), ('test', 5)):
                np.savez('\(dir)/' + name + '.npz', images=rng.integers(0, 256, (n, 1, 16, 16), dtype=np.uint8),
                         labels=np.arange(n, dtype=np.int64) % 3)
            """
        let run1 = try runProgram("/usr/bin/env", ["python3", "-c", script])
        let (status, out) = (run1.status, run1.output)
        XCTAssertEqual(status, 0, out)
        return dir
    }

    private func privatize(_ site: String, resume: Bool) throws -> ProgramOutput {
        try runProgram(try flwrBinaryPath(), ["privatize", "--dataset", "npz", "--data-dir", site,
                                              "--out", site + "/flwr-private/release",
                                              "--ledger-dir", site + "/flwr-private/ledger",
                                              "--dp-epsilon", "1", "--privacy-budget", "1", "--include-test"]
                                             + (resume ? ["--resume"] : []))
    }

    func testRestartedInitContainerSpendsNothingTwice() throws {
        let site = try siteFolder()
        let release = site + "/flwr-private/release/partition.npz"
        let first = try privatize(site, resume: true)
        XCTAssertEqual(first.status, 0, first.output)
        XCTAssertTrue(first.output.contains("37 images of 1×16×16"), first.output)
        XCTAssertTrue(first.output.contains("charged ε 1"), first.output)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: release))
        XCTAssertTrue(FileManager.default.fileExists(atPath: site + "/flwr-private/release/test.npz"))

        // The pod restarts: the init container runs again with a fresh seed, but --resume finds the
        // release in the ledger and re-creates it.
        try FileManager.default.removeItem(atPath: release)
        let again = try privatize(site, resume: true)
        XCTAssertEqual(again.status, 0, again.output)
        XCTAssertTrue(again.output.contains("nothing more spent"), again.output)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: release)), bytes, "the same noise, not new noise")

        // Without --resume the run would draw new noise: refused, the budget is spent.
        let fresh = try privatize(site, resume: false)
        XCTAssertNotEqual(fresh.status, 0, fresh.output)
        XCTAssertTrue(fresh.output.contains("budget"), fresh.output)

        let ledger = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(
            fileURLWithPath: site + "/flwr-private/ledger/privacy-ledger.json"))) as? [String: Any]
        XCTAssertEqual((ledger?["releases"] as? [Any])?.count, 1, "\(String(describing: ledger))")
        XCTAssertEqual(ledger?["spent"] as? Double, 1)
    }

    func testClientWithoutPartitionFlagsTrainsOnItsWholeFolder() throws {
        let site = try siteFolder()
        // Nothing listens on port 1 of the loopback: the client reads its data, then gives up connecting.
        let run2 = try runProgram(try flwrBinaryPath(), [
            "client", "--dataset", "npz", "--data-dir", site, "--server", "127.0.0.1:1", "--connect-deadline", "1",
        ])
        let (status, output) = (run2.status, run2.output)
        XCTAssertNotEqual(status, 0, output)
        XCTAssertTrue(output.contains("all of ") && output.contains(": 37 training examples"), output)
        // With a partition flag the same folder is split again.
        let split = try runProgram(try flwrBinaryPath(), [
            "client", "--dataset", "npz", "--data-dir", site, "--num-partitions", "3", "--partition", "1",
            "--server", "127.0.0.1:1", "--connect-deadline", "1",
        ])
        XCTAssertTrue(split.output.contains("partition 1 of 3:"), split.output)
        XCTAssertFalse(split.output.contains(": 37 training examples"), split.output)
    }

    func testClientOnABadFolderFailsWithTheReadersError() throws {
        let empty = NSTemporaryDirectory() + "flwr-empty-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: empty) }
        let reader = try runProgram(try flwrBinaryPath(), ["partition", "--dataset", "npz", "--data-dir", empty])
        let client = try runProgram(try flwrBinaryPath(), ["client", "--dataset", "npz", "--data-dir", empty,
                                                           "--server", "127.0.0.1:1", "--connect-deadline", "1"])
        XCTAssertNotEqual(client.status, 0)
        let message = try XCTUnwrap(reader.output.split(separator: "\n").first { $0.contains("partition.npz") },
                                    reader.output)
        XCTAssertTrue(client.output.contains(message), "expected the reader's \(message) in:\n\(client.output)")

        let garbage = empty + "/partition.npz"
        try Data("not a zip".utf8).write(to: URL(fileURLWithPath: garbage))
        let bad = try runProgram(try flwrBinaryPath(), ["client", "--dataset", "npz", "--data-dir", empty,
                                                        "--server", "127.0.0.1:1", "--connect-deadline", "1"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.output.contains(garbage), bad.output)
        XCTAssertFalse(bad.output.contains("training examples"), bad.output)
    }
}
