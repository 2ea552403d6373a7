import Foundation
import TestSupport
import XCTest

/// `flwr simulate --secagg` as a real process on Fashion-MNIST: the same federation with and
/// without secure aggregation (same seed, IID partitions), 3 rounds each over the loopback wire.
final class SecAggReleaseTests: XCTestCase {
    private func simulate(_ extra: [String]) throws -> (output: String, rounds: [[String: Any]]) {
        let flwr = try flwrBinaryPath()
        let out = NSTemporaryDirectory() + "flwr-secagg-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: out) }
        let r = try runProgram(flwr, ["simulate", "--clients", "3", "--rounds", "3", "--alpha", "0", "--seed", "7",
                                      "--max-train-examples", "3000", "--max-test-examples", "2000", "--out", out] + extra)
        XCTAssertEqual(r.status, 0, r.output)
        let lines = try String(contentsOfFile: out + "/history.jsonl", encoding: .utf8).split(separator: "\n")
        let rounds = try lines.map { try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
        return (r.output, rounds)
    }

    /// Accuracy after 3 rounds within 0.5 point of plain FedAvg's, every round aggregated from all
    /// three clients' masked inputs, and the history saying so.
    func testSimulateWithSecAggMatchesPlainFedAvgAccuracy() throws {
        try requireReleaseBuild()
        try requireFashionMNIST()
        let plain = try simulate([])
        let secure = try simulate(["--secagg", "--secagg-clipping-range", "1"])
        XCTAssertEqual(plain.rounds.count, 3)
        XCTAssertEqual(secure.rounds.count, 3)
        for r in secure.rounds {
            let s = try XCTUnwrap(r["secagg"] as? [String: Int], "no secagg record: \(r)")
            XCTAssertEqual(s, ["sampled": 3, "sent": 3, "dropped": 0, "recovered": 0])
            XCTAssertNil(plain.rounds.first?["secagg"])
        }
        let a = try XCTUnwrap(plain.rounds.last?["accuracy"] as? Double)
        let b = try XCTUnwrap(secure.rounds.last?["accuracy"] as? Double)
        XCTAssertGreaterThan(a, 0.5, "plain FedAvg must learn something for the comparison to mean anything")
        XCTAssertEqual(b, a, accuracy: 0.005, "secure aggregation \(b) against plain FedAvg \(a)")
        // The same federation with virtual clients: the SecAgg+ round runs in process, same result.
        let virtual = try simulate(["--secagg", "--secagg-clipping-range", "1", "--transport", "virtual"])
        XCTAssertEqual(virtual.rounds.count, 3, virtual.output)
        for r in virtual.rounds {
            XCTAssertEqual(r["secagg"] as? [String: Int], ["sampled": 3, "sent": 3, "dropped": 0, "recovered": 0], "\(r)")
        }
        let c = try XCTUnwrap(virtual.rounds.last?["accuracy"] as? Double)
        XCTAssertEqual(c, a, accuracy: 0.005, "virtual clients with secure aggregation \(c) against plain FedAvg \(a)")
    }

    /// Strategies that need each client's update, server-side clipping and DP-FedAvg are refused
    /// before anything starts, each naming why.
    func testStrategiesNeedingIndividualUpdatesAreRefused() throws {
        let flwr = try flwrBinaryPath()
        let cases: [([String], String)] = [
            (["--strategy", "krum"], "--strategy krum ranks or compares each client's own update, which --secagg hides"),
            (["--strategy", "fedmedian"], "--strategy fedmedian ranks or compares each client's own update"),
            (["--clip-norm", "1"], "--clip-norm clips each client's own update on the server, which --secagg hides"),
            (["--dp-noise-multiplier", "1", "--dp-clip", "0.5"], "DP-FedAvg (--dp-noise-multiplier) clips each client's own update on the server"),
            (["--secagg-num-shares", "4", "--secagg-reconstruction-threshold", "2"], "must be more than half of --secagg-num-shares 4"),
        ]
        for (flags, needle) in cases {
            for command in ["simulate", "server"] {
                let r = try runProgram(flwr, [command, "--secagg"] + flags)
                XCTAssertNotEqual(r.status, 0, "\(command) \(flags)")
                XCTAssertTrue(r.output.contains(needle), "\(command) \(flags): \(r.output)")
            }
        }
        let r = try runProgram(flwr, ["server", "--secagg-num-shares", "4"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.output.contains("--secagg-num-shares needs --secagg"), r.output)
    }
}
