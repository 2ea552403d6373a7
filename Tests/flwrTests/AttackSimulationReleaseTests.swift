import Foundation
import TestSupport
import XCTest

/// `flwr simulate` with malicious clients over real loopback connections on a slice of real
/// Fashion-MNIST: the attacks reach the server through the wire, the server's checks and the
/// robust strategies handle them, and history.jsonl records who was malicious.
final class AttackSimulationReleaseTests: XCTestCase {
    override func setUpWithError() throws {
        try requireReleaseBuild()
        try requireFashionMNIST()
    }

    private func simulate(_ extra: [String]) throws -> (output: String, rows: [[String: Any]]) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("flwr-attack-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let run1 = try runProgram(try flwrBinaryPath(), [
            "simulate", "--clients", "4", "--rounds", "2", "--alpha", "0", "--seed", "3", "--max-train-examples", "200",
            "--max-test-examples", "500", "--parallel", "2", "--out", dir,
        ] + extra)
        let (status, output) = (run1.status, run1.output)
        XCTAssertEqual(status, 0, output)
        let text = try String(contentsOfFile: dir + "/history.jsonl", encoding: .utf8)
        let rows = try text.split(separator: "\n").map {
            try XCTUnwrap(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
        return (output, rows)
    }

    /// One NaN-sending client: rejected every round with the reason, the others aggregated.
    func testNaNAttackerIsRejectedAndRecordedAsMalicious() throws {
        let (output, rows) = try simulate(["--malicious", "1", "--attack", "nan"])
        XCTAssertEqual(rows.count, 2)
        for r in rows {
            XCTAssertEqual(r["malicious"] as? [String], ["partition-0"], "\(r)")
            XCTAssertEqual(r["failures"] as? Int, 1)
            XCTAssertEqual(r["fit_clients"] as? Int, 3)
            XCTAssertNotNil(r["accuracy"] as? Double)
        }
        XCTAssertTrue(output.contains("client partition-0: update has a non-finite value"), output)
    }

    /// A client claiming 3·10⁹ examples is refused by --max-examples (default 2³¹); with
    /// --max-examples raised it is accepted; the median ignores its weight either way.
    func testInflatedExampleClaimsAreBoundedByMaxExamples() throws {
        let refused = try simulate(["--malicious", "1", "--attack", "claim-examples", "--claimed-examples", "3000000000"])
        XCTAssertEqual(refused.rows.map { $0["failures"] as? Int }, [1, 1])
        XCTAssertTrue(refused.output.contains("claims numExamples = 3000000000, above --max-examples 2147483648"), refused.output)
        let median = try simulate(["--malicious", "1", "--attack", "claim-examples", "--claimed-examples", "3000000000",
                                   "--max-examples", "4000000000", "--strategy", "fedmedian"])
        XCTAssertEqual(median.rows.map { $0["failures"] as? Int }, [0, 0])
        XCTAssertEqual(median.rows.map { $0["fit_clients"] as? Int }, [4, 4])
    }

    /// Unknown names are refused with the list to choose from.
    func testUnknownStrategyOrAttackIsAValidationError() throws {
        let run2 = try runProgram(try flwrBinaryPath(), ["simulate", "--strategy", "fedfoo"])
        let (status, output) = (run2.status, run2.output)
        XCTAssertNotEqual(status, 0)
        XCTAssertTrue(output.contains("unknown --strategy fedfoo; choose one of fedavg, fedavgm, fedprox"), output)
        let run3 = try runProgram(try flwrBinaryPath(), ["simulate", "--strategy", "fedprox"])
        let (s2, o2) = (run3.status, run3.output)
        XCTAssertNotEqual(s2, 0)
        XCTAssertTrue(o2.contains("--strategy fedprox needs --proximal-mu"), o2)
        let run4 = try runProgram(try flwrBinaryPath(), ["client", "--attack", "bitflip"])
        let (s3, o3) = (run4.status, run4.output)
        XCTAssertNotEqual(s3, 0)
        XCTAssertTrue(o3.contains("unknown --attack bitflip"), o3)
    }
}
