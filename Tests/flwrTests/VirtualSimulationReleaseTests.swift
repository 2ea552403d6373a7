import Foundation
import TestSupport
import XCTest

/// `flwr simulate --transport virtual` against `--transport tcp` on real Fashion-MNIST: the same
/// seed gives the same history; idle virtual clients cost little memory (resident memory after
/// the clients are registered, in two child processes, 1,000 against 100,000 clients).
final class VirtualSimulationReleaseTests: XCTestCase {
    override func setUpWithError() throws {
        try requireReleaseBuild()
        try requireFashionMNIST()
    }

    private func simulate(_ arguments: [String]) throws -> (output: String, rows: [[String: Any]]) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("flwr-virtual-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let run = try runProgram(try flwrBinaryPath(), ["simulate", "--out", dir] + arguments)
        let (status, output) = (run.status, run.output)
        XCTAssertEqual(status, 0, output)
        let text = try String(contentsOfFile: dir + "/history.jsonl", encoding: .utf8)
        let rows = try text.split(separator: "\n").map {
            try XCTUnwrap(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
        return (output, rows)
    }

    /// 10 clients on a Dirichlet split, 4 sampled per round, 3 rounds: virtual and TCP clients
    /// sample the same clients, train on the same data and give the same accuracy and loss.
    func testVirtualAndTCPGiveTheSameHistory() throws {
        let common = ["--clients", "10", "--clients-per-round", "4", "--rounds", "3", "--alpha", "0.5", "--seed", "7",
                      "--max-train-examples", "150", "--max-test-examples", "1000"]
        let tcp = try simulate(common + ["--transport", "tcp"])
        let virtual = try simulate(common + ["--transport", "virtual"])
        XCTAssertEqual(tcp.rows.count, 3)
        XCTAssertEqual(virtual.rows.count, 3)
        for (t, v) in zip(tcp.rows, virtual.rows) {
            XCTAssertEqual(t["fit_clients"] as? Int, 4)
            XCTAssertEqual(v["fit_clients"] as? Int, 4)
            XCTAssertEqual(v["failures"] as? Int, 0)
            let (ta, va) = (try XCTUnwrap(t["accuracy"] as? Double), try XCTUnwrap(v["accuracy"] as? Double))
            let (tl, vl) = (try XCTUnwrap(t["loss"] as? Double), try XCTUnwrap(v["loss"] as? Double))
            XCTAssertEqual(ta, va, accuracy: 1e-6, "round \(t["round"] ?? "?")")
            XCTAssertEqual(tl, vl, accuracy: 1e-5 * max(1, abs(tl)), "round \(t["round"] ?? "?")")
        }
        // The clients trained: the global model (hence the central loss) changed from round to round.
        let losses = virtual.rows.compactMap { $0["loss"] as? Double }
        XCTAssertEqual(Set(losses).count, 3, "\(losses)")
        XCTAssertTrue(tcp.output.contains("10 tcp clients"), tcp.output)
        XCTAssertTrue(virtual.output.contains("10 virtual clients"), virtual.output)
        XCTAssertTrue(virtual.output.contains("fit on 4 of 10 clients"), virtual.output)
        XCTAssertTrue(virtual.output.contains("4/4 sampled clients trained"), virtual.output)
    }

    /// Resident memory once N virtual clients are registered, from the run's own log line.
    private func residentAfterRegistration(clients: Int) throws -> Double {
        let (output, _) = try simulate(["--transport", "virtual", "--clients", "\(clients)", "--clients-per-round", "2",
                                        "--rounds", "1", "--alpha", "0", "--max-test-examples", "100"])
        let pattern = try NSRegularExpression(pattern: "\(clients) virtual clients ready; resident memory ([0-9.]+) MB")
        let match = try XCTUnwrap(pattern.firstMatch(in: output, range: NSRange(output.startIndex..., in: output)), output)
        return try XCTUnwrap(Double(output[Range(match.range(at: 1), in: output)!]))
    }

    /// 99,000 more idle clients cost at most 1 KB each (the same data is loaded in both runs:
    /// every training example is some client's at both sizes).
    func testIdleVirtualClientsCostAtMostOneKilobyteEach() throws {
        let small = try residentAfterRegistration(clients: 1000)
        let large = try residentAfterRegistration(clients: 100_000)
        let perClient = (large - small) * 1_048_576 / 99_000
        XCTAssertLessThanOrEqual(perClient, 1024, "resident \(small) MB at 1,000 clients, \(large) MB at 100,000")
    }

    /// Settings virtual clients cannot honour are refused with the way out.
    func testDataLevelPrivacyNeedsTCP() throws {
        let refused = try runProgram(try flwrBinaryPath(), [
            "simulate", "--transport", "virtual", "--clients", "4", "--rounds", "1", "--dp-epsilon", "5",
            "--out", FileManager.default.temporaryDirectory.appendingPathComponent("flwr-virtual-\(UUID().uuidString)").path,
        ])
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(refused.output.contains("--dp-epsilon releases every partition once"), refused.output)
        let invalid = try runProgram(try flwrBinaryPath(), ["simulate", "--clients", "10", "--clients-per-round", "11"])
        let (s2, o2) = (invalid.status, invalid.output)
        XCTAssertNotEqual(s2, 0)
        XCTAssertTrue(o2.contains("--clients-per-round must be between 1 and --clients (10), got 11"), o2)
    }
}
