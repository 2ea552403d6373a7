import Foundation
import TestSupport
import XCTest

/// `flwr train` as a user runs it: on real Fashion-MNIST, and on a partition released by
/// `flwr privatize` (`--dataset npz`), with its per-epoch JSON lines and the .npz model.
final class TrainCommandReleaseTests: XCTestCase {
    override func setUpWithError() throws {
        try requireReleaseBuild()
        try requireFashionMNIST()
    }

    private func flwr(_ args: [String]) throws -> ProgramOutput {
        try runProgram(try flwrBinaryPath(), args)
    }

    private func epochs(_ path: String) throws -> [[String: Any]] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map {
            try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
    }

    func testTrainWritesEpochMetricsAndLearns() throws {
        let dir = NSTemporaryDirectory() + "flwr-train-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try flwr(["train", "--epochs", "2", "--max-train-examples", "3000", "--lr", "0.05",
                          "--metrics-out", dir + "/m.jsonl", "--model-out", dir + "/model.npz"])
        XCTAssertEqual(r.status, 0, r.output)
        let rows = try epochs(dir + "/m.jsonl")
        XCTAssertEqual(rows.map { $0["epoch"] as? Int }, [1, 2])
        for row in rows {
            for key in ["epoch", "loss", "accuracy", "seconds", "images_per_s"] { XCTAssertNotNil(row[key], "\(key) in \(row)") }
        }
        // 3,000 images for 2 epochs: well above chance (0.1) on the 10,000 test images.
        XCTAssertGreaterThan(try XCTUnwrap(rows.last?["accuracy"] as? Double), 0.6, r.output)
        XCTAssertLessThan(try XCTUnwrap(rows.last?["loss"] as? Double), try XCTUnwrap(rows.first?["loss"] as? Double))
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/model.npz"))
    }

    func testTrainOnAPrivatizedRelease() throws {
        let dir = NSTemporaryDirectory() + "flwr-priv-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let p = try flwr(["privatize", "--num-partitions", "20", "--partition", "0", "--dp-epsilon", "8",
                          "--dp-seed", "3", "--include-test", "--out", dir])
        XCTAssertEqual(p.status, 0, p.output)
        let r = try flwr(["train", "--dataset", "npz", "--data-dir", dir, "--epochs", "1", "--lr", "0.05",
                          "--metrics-out", dir + "/m.jsonl"])
        XCTAssertEqual(r.status, 0, r.output)
        let acc = try XCTUnwrap(try epochs(dir + "/m.jsonl").last?["accuracy"] as? Double)
        XCTAssertGreaterThan(acc, 0.4, "3,000 noised images (ε = 8 per pixel) still teach the net: \(r.output)")
        // Training on the release spends no more ε: the ledger still holds one release.
        let ledger = try String(contentsOfFile: dir + "/privacy-ledger.json", encoding: .utf8)
        XCTAssertEqual(ledger.components(separatedBy: "\"epsilon\"").count - 1, 1, ledger)
    }
}
