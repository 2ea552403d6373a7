import Foundation
import TestSupport
import XCTest

/// Record-level DP-SGD as users run it: `flwr privacy epsilon --mechanism dp-sgd` against Opacus
/// 1.6.0's RDPAccountant (values computed with it and pasted here), `flwr train --dp-sgd` with ε
/// per epoch, and `flwr simulate --dp-sgd` where one site is over its budget (its ledger carries
/// an earlier spend): it refuses every round, the server goes on with the others, records each
/// site's ε and prints the worst; a second run on the same ledgers continues their accounts.
final class DPSGDReleaseTests: XCTestCase {
    private func flwr(_ args: [String]) throws -> ProgramOutput {
        try runProgram(try flwrBinaryPath(), args)
    }

    private func lines(_ path: String) throws -> [[String: Any]] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map {
            try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
    }

    /// Opacus 1.6.0: RDPAccountant with history [(1.1, 256/60000, 705)], get_epsilon(1e-5)
    /// = 0.843514420483918 (3 epochs of 235 steps).
    func testEpsilonCommandMatchesOpacus() throws {
        let r = try flwr(["privacy", "epsilon", "--mechanism", "dp-sgd", "--dataset-size", "60000", "--batch-size", "256",
                          "--epochs", "3", "--noise-multiplier", "1.1", "--delta", "1e-5", "--json"])
        XCTAssertEqual(r.status, 0, r.output)
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.output.utf8)) as? [String: Double])
        XCTAssertEqual(try XCTUnwrap(json["epsilon"]), 0.843514420483918, accuracy: 0.843514420483918 * 1e-9)
        XCTAssertEqual(json["steps"], 705)
        let t = try flwr(["privacy", "epsilon", "--mechanism", "dp-sgd", "--dataset-size", "60000", "--batch-size", "256",
                          "--epochs", "3", "--target-epsilon", "1", "--json"])
        XCTAssertEqual(t.status, 0, t.output)
        let solved = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(t.output.utf8)) as? [String: Double])
        XCTAssertLessThanOrEqual(try XCTUnwrap(solved["epsilon"]), 1)
        XCTAssertLessThan(try XCTUnwrap(solved["noise_multiplier"]), 1.1)
        let bad = try flwr(["privacy", "epsilon", "--mechanism", "dp-sgd", "--epochs", "3", "--noise-multiplier", "1"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.output.contains("--dataset-size and --batch-size, or --sampling-rate"), bad.output)
    }

    /// 2,000 images, B = 64 (q = 0.032, 32 steps an epoch), σ = 1.1: ε after epochs 1 and 2 are
    /// Opacus's 1.5973720720723614 and 1.8905561141415048; the model learns (momentum 0.9: with
    /// plain SGD the clipped steps are so short that unseeded noise left some runs near 0.2; with it
    /// runs land at 0.50-0.52).
    func testTrainReportsEpsilonEachEpoch() throws {
        try requireReleaseBuild()
        try requireFashionMNIST()
        let dir = NSTemporaryDirectory() + "flwr-dpsgd-train-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try flwr(["train", "--epochs", "2", "--max-train-examples", "2000", "--batch-size", "64", "--lr", "0.1",
                          "--momentum", "0.9", "--dp-sgd", "--noise-multiplier", "1.1", "--max-grad-norm", "1",
                          "--metrics-out", dir + "/m.jsonl"])
        XCTAssertEqual(r.status, 0, r.output)
        let rows = try lines(dir + "/m.jsonl")
        XCTAssertEqual(rows.count, 2, r.output)
        let eps = rows.compactMap { $0["epsilon"] as? Double }
        XCTAssertEqual(eps.count, 2)
        XCTAssertEqual(eps.first ?? 0, 1.5973720720723614, accuracy: 1e-6)
        XCTAssertEqual(eps.last ?? 0, 1.8905561141415048, accuracy: 1e-6)
        XCTAssertTrue(r.output.contains("epsilon 1.891"), r.output)
        XCTAssertGreaterThan(try XCTUnwrap(rows.last?["accuracy"] as? Double), 0.3, "well above chance (0.1): \(r.output)")
        // With only a target, σ is solved for the planned epochs and the run ends within it.
        let t = try flwr(["train", "--epochs", "1", "--max-train-examples", "1000", "--batch-size", "50", "--lr", "0.1",
                          "--dp-sgd", "--target-epsilon", "2", "--metrics-out", dir + "/t.jsonl"])
        XCTAssertEqual(t.status, 0, t.output)
        XCTAssertLessThanOrEqual(try XCTUnwrap(try lines(dir + "/t.jsonl").last?["epsilon"] as? Double), 2)
    }

    func testSimulateRecordsEachSitesEpsilonAndGoesOnWithoutTheSiteOverBudget() throws {
        try requireReleaseBuild()
        try requireFashionMNIST()
        let out = NSTemporaryDirectory() + "flwr-dpsgd-sim-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: out) }
        // Partition 0 already spent ε ≈ 10⁴ (q 0.5, σ 0.5, 1000 steps): over any budget here.
        let ledger0 = out + "/privacy/partition-0"
        try FileManager.default.createDirectory(atPath: ledger0, withIntermediateDirectories: true)
        try Data(#"{"format": "flwr-dp-sgd-ledger/1", "delta": 1e-5, "budget": 50, "epsilon": 0, "entries": [{"samplingRate": 0.5, "noiseMultiplier": 0.5, "steps": 1000, "label": "earlier", "time": "2026-12-01T00:00:00Z"}]}"#.utf8)
            .write(to: URL(fileURLWithPath: ledger0 + "/dp-sgd-ledger.json"))
        let args = ["simulate", "--clients", "3", "--fraction-fit", "1", "--max-train-examples", "600",
                    "--max-test-examples", "300", "--batch-size", "16", "--lr", "0.05", "--dp-sgd", "--noise-multiplier", "1",
                    "--max-grad-norm", "1", "--target-epsilon", "50", "--out", out]
        let r = try flwr(args + ["--rounds", "2"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("DP-SGD privacy budget exceeded"), r.output)
        XCTAssertTrue(r.output.contains("record-level DP-SGD: worst site"), r.output)
        let rounds = try lines(out + "/history.jsonl")
        XCTAssertEqual(rounds.count, 2)
        var last: [String: Double] = [:]
        for row in rounds {
            let sites = try XCTUnwrap(row["site_epsilon"] as? [String: Double], "\(row)")
            XCTAssertEqual(Set(sites.keys), ["partition-1", "partition-2"], "\(row)")
            XCTAssertEqual(row["fit_clients"] as? Int, 2)
            for (site, e) in sites { XCTAssertGreaterThan(e, last[site] ?? 0); XCTAssertLessThanOrEqual(e, 50) }
            last = sites
        }
        // A restart on the same ledgers: the sites' accounts continue from round 2's ε.
        let again = try flwr(args + ["--rounds", "1"])
        XCTAssertEqual(again.status, 0, again.output)
        let next = try XCTUnwrap(try lines(out + "/history.jsonl").last?["site_epsilon"] as? [String: Double])
        for (site, e) in last { XCTAssertGreaterThan(try XCTUnwrap(next[site]), e, "\(site) starts again from zero") }
    }
}
