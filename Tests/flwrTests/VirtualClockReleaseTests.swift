import Foundation
import TestSupport
import XCTest

/// `flwr simulate` on the virtual clock and with `--mode async` (FedBuff), on real Fashion-MNIST,
/// through the binary: history.jsonl's virtual time, FedBuff's equivalence with sync FedAvg, the
/// refusals.
final class VirtualClockReleaseTests: XCTestCase {
    override func setUpWithError() throws {
        try requireReleaseBuild()
        try requireFashionMNIST()
    }

    private func simulate(_ arguments: [String]) throws -> (output: String, rows: [[String: Any]]) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("flwr-clock-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let run = try runProgram(try flwrBinaryPath(), ["simulate", "--out", dir] + arguments)
        XCTAssertEqual(run.status, 0, run.output)
        let text = try String(contentsOfFile: dir + "/history.jsonl", encoding: .utf8)
        let rows = try text.split(separator: "\n").map {
            try XCTUnwrap(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
        return (run.output, rows)
    }

    private let common = ["--transport", "virtual", "--alpha", "0.5", "--seed", "7", "--model", "mlp", "--hidden", "32",
                          "--max-train-examples", "300", "--max-test-examples", "1000"]

    /// K = C = N = 5, a = 0, η = 1: FedBuff's updates are synchronous FedAvg's rounds, so the
    /// histories match (and the losses move: the clients trained).
    func testFedBuffBufferingEveryClientMatchesSyncFedAvg() throws {
        let base = common + ["--clients", "5", "--rounds", "3"]
        let sync = try simulate(base)
        let fedBuff = try simulate(base + ["--mode", "async", "--concurrency", "5", "--buffer-size", "5",
                                           "--staleness-exponent", "0", "--client-speed", "lognormal:1"])
        XCTAssertEqual(sync.rows.count, 3)
        XCTAssertEqual(fedBuff.rows.count, 3)
        for (s, f) in zip(sync.rows, fedBuff.rows) {
            let (sl, fl) = (try XCTUnwrap(s["loss"] as? Double), try XCTUnwrap(f["loss"] as? Double))
            XCTAssertEqual(fl, sl, accuracy: 1e-6 * max(1, abs(sl)), "update \(f["round"] ?? "?")")
            XCTAssertEqual(try XCTUnwrap(f["accuracy"] as? Double), try XCTUnwrap(s["accuracy"] as? Double), accuracy: 1e-9)
            XCTAssertEqual(f["fit_clients"] as? Int, 5)
            XCTAssertEqual(f["staleness"] as? Double, 0)
            XCTAssertNil(s["virtual_time"])
        }
        let losses = sync.rows.compactMap { $0["loss"] as? Double }
        XCTAssertEqual(Set(losses).count, 3, "\(losses)")
        XCTAssertTrue(fedBuff.output.contains("FedBuff: 5 clients training at a time"), fedBuff.output)
    }

    /// Heterogeneous speeds and links change the clock, not the learning: same losses as without,
    /// and each round's virtual time adds up to the clock.
    func testTheClockChangesTimingNotLearning() throws {
        let base = common + ["--clients", "20", "--clients-per-round", "4", "--rounds", "3"]
        let plain = try simulate(base)
        let timed = try simulate(base + ["--client-speed", "lognormal:1", "--link-mbps", "lognormal:1,0.5"])
        var clock = 0.0
        for (p, t) in zip(plain.rows, timed.rows) {
            XCTAssertEqual(t["loss"] as? Double, p["loss"] as? Double)
            let v = try XCTUnwrap(t["virtual_seconds"] as? Double)
            XCTAssertGreaterThan(v, 0)
            clock += v
            XCTAssertEqual(try XCTUnwrap(t["virtual_time"] as? Double), clock, accuracy: 1e-9)
            XCTAssertNil(p["virtual_seconds"])
        }
        XCTAssertTrue(timed.output.contains("virtual s"), timed.output)
        XCTAssertFalse(plain.output.contains("virtual s"), plain.output)
    }

    /// More concurrent clients than the buffer: updates are stale, the clock only moves forward,
    /// results beyond --max-staleness are counted as discarded.
    func testAsyncUpdatesRecordStalenessAndAMonotoneClock() throws {
        let run = try simulate(common + ["--clients", "20", "--rounds", "8", "--mode", "async", "--concurrency", "6",
                                         "--buffer-size", "2", "--max-staleness", "1", "--client-speed", "lognormal:1",
                                         "--eval-every", "4"])
        XCTAssertEqual(run.rows.count, 8)
        var last = 0.0
        var stale = 0.0, discarded = 0
        for r in run.rows {
            XCTAssertEqual(r["fit_clients"] as? Int, 2)
            let t = try XCTUnwrap(r["virtual_time"] as? Double)
            XCTAssertGreaterThanOrEqual(t, last)
            last = t
            let s = try XCTUnwrap(r["staleness"] as? Double)
            XCTAssertLessThanOrEqual(s, 1, "--max-staleness 1 keeps only results at most 1 version old")
            stale += s
            discarded += try XCTUnwrap(r["discarded"] as? Int)
        }
        XCTAssertGreaterThan(stale, 0, "6 clients training for a 2-result buffer must produce stale results")
        XCTAssertGreaterThan(discarded, 0, "with 6 in flight and K = 2, some results are more than 1 version old")
        // --eval-every 4: central evaluation after updates 4 and 8 only.
        XCTAssertEqual(run.rows.map { $0["accuracy"] is Double }, [false, false, false, true, false, false, false, true])
    }

    func testTheVirtualClockIsRefusedForTCPClients() throws {
        let run = try runProgram(try flwrBinaryPath(), ["simulate", "--transport", "tcp", "--clients", "3", "--rounds", "1",
                                                        "--client-speed", "lognormal:1", "--out", NSTemporaryDirectory() + "flwr-clock-tcp"])
        XCTAssertNotEqual(run.status, 0)
        XCTAssertTrue(run.output.contains("add --transport virtual"), run.output)
    }

    /// Availability changes who can be sampled, hence DP-FedAvg's sampling rate: refused together.
    func testAvailabilityWithDPFedAvgIsRefused() throws {
        let run = try runProgram(try flwrBinaryPath(), ["simulate", "--transport", "virtual", "--clients", "20", "--rounds", "1",
                                                        "--client-availability", "0.5", "--dp-noise-multiplier", "1", "--dp-clip", "1",
                                                        "--out", NSTemporaryDirectory() + "flwr-clock-dp"])
        XCTAssertNotEqual(run.status, 0)
        XCTAssertTrue(run.output.contains("drop one of --client-availability and --dp-noise-multiplier"), run.output)
    }
}
