import Foundation
import TestSupport
import XCTest

/// `flwr privacy epsilon` and `flwr simulate --dp-*` as real processes: the calculator's numbers
/// against dp-accounting 0.6.0 (computed with it and pasted here), and a real federation on
/// Fashion-MNIST that stops at its privacy budget with the model saved.
final class DPFedAvgReleaseTests: XCTestCase {
    /// dp-accounting 0.6.0: RdpAccountant().compose(SelfComposedDpEvent(PoissonSampledDpEvent(
    /// 0.01, GaussianDpEvent(1.1)), 1000)).get_epsilon_and_optimal_order(1e-5)
    /// = (1.7117701662429012, 9.6).
    func testEpsilonCommandPrintsDPAccountingsValueAsOneJSONLine() throws {
        let flwr = try flwrBinaryPath()
        let r = try runProgram(flwr, ["privacy", "epsilon", "--noise-multiplier", "1.1", "--sampling-rate", "0.01",
                                      "--rounds", "1000", "--delta", "1e-5", "--json"])
        XCTAssertEqual(r.status, 0, r.output)
        let lines = r.output.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, r.output)
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.output.utf8)) as? [String: Double])
        XCTAssertEqual(try XCTUnwrap(json["epsilon"]), 1.7117701662429012, accuracy: 1e-9)
        XCTAssertEqual(json["delta"], 1e-5)
        XCTAssertEqual(json["order"], 9.6)
    }

    func testTargetEpsilonSolvesForTheNoiseMultiplier() throws {
        let flwr = try flwrBinaryPath()
        let r = try runProgram(flwr, ["privacy", "epsilon", "--target-epsilon", "2", "--sampling-rate", "0.1",
                                      "--rounds", "100", "--json"])
        XCTAssertEqual(r.status, 0, r.output)
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.output.utf8)) as? [String: Double])
        let z = try XCTUnwrap(json["noise_multiplier"])
        XCTAssertLessThanOrEqual(try XCTUnwrap(json["epsilon"]), 2)
        // A 0.1% smaller z must overshoot the target: the solver returns the smallest z.
        let below = try runProgram(flwr, ["privacy", "epsilon", "--noise-multiplier", "\(z * 0.999)", "--sampling-rate", "0.1",
                                          "--rounds", "100", "--json"])
        let e = try XCTUnwrap((JSONSerialization.jsonObject(with: Data(below.output.utf8)) as? [String: Double])?["epsilon"])
        XCTAssertGreaterThan(e, 2)
    }

    func testBadPrivacyInputsExitWithTheReason() throws {
        let flwr = try flwrBinaryPath()
        let r = try runProgram(flwr, ["privacy", "epsilon", "--noise-multiplier", "1", "--sampling-rate", "1.5", "--rounds", "10"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.output.contains("sampling rate 1.5 is not in [0, 1]"), r.output)
        let s = try runProgram(flwr, ["simulate", "--dp-noise-multiplier", "1"])
        XCTAssertNotEqual(s.status, 0)
        XCTAssertTrue(s.output.contains("--dp-clip"), s.output)
    }

    /// 4 clients, all sampled (q = 1), z = 1: ε(2) = 7.0774 and ε(3) = 9.0100 at δ = 1e-5
    /// (dp-accounting 0.6.0). With --dp-target-epsilon 8 the run of 5 rounds stops after round 2
    /// with the reason, ε in history.jsonl and the table, and model.npz written.
    func testSimulateStopsAtTheTargetEpsilonAndSavesTheModel() throws {
        try requireReleaseBuild()
        try requireFashionMNIST()
        let flwr = try flwrBinaryPath()
        let out = NSTemporaryDirectory() + "flwr-dp-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: out) }
        let r = try runProgram(flwr, ["simulate", "--clients", "4", "--rounds", "5", "--fraction-fit", "1",
                                      "--max-train-examples", "40", "--max-test-examples", "200",
                                      "--dp-noise-multiplier", "1", "--dp-clip", "0.5", "--dp-target-epsilon", "8",
                                      "--out", out])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("stopped early: privacy budget: round 3 would bring ε to 9.01 > --dp-target-epsilon 8"), r.output)
        let history = try String(contentsOfFile: out + "/history.jsonl", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(history.count, 2)
        let eps = try history.map { line -> Double in
            let obj = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            XCTAssertEqual(obj["delta"] as? Double, 1e-5)
            return try XCTUnwrap(obj["epsilon"] as? Double)
        }
        XCTAssertEqual(eps[0], 4.728507067217623, accuracy: 1e-9)
        XCTAssertEqual(eps[1], 7.077391578166641, accuracy: 1e-9)
        XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/model.npz"))
        XCTAssertTrue(r.output.contains("epsilon"), "the per-round table has an epsilon column:\n\(r.output)")
    }
}
