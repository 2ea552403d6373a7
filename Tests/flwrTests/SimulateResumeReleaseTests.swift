import Foundation
import TestSupport
import XCTest

/// `flwr simulate --checkpoint-dir DIR` stopped by a real signal after a round, then run again
/// with `--resume`: the resumed history.jsonl is the uninterrupted run's (sync with virtual and
/// TCP clients, and async FedBuff on the virtual clock). The signal is sent once a round
/// has been logged as completed; the run may complete a few more before it lands (a round takes
/// about 10 ms here, so a run of 100 leaves a wide margin), so the tests read the round the
/// checkpoint holds instead of assuming one. Deadlines bound hangs only.
final class SimulateResumeReleaseTests: XCTestCase {
    override func setUpWithError() throws {
        try requireReleaseBuild()
        try requireFashionMNIST()
    }

    private func folder() -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("flwr-simresume-\(UUID().uuidString)").path
        addTeardownBlock {
            try? FileManager.default.removeItem(atPath: dir)
            try? FileManager.default.removeItem(atPath: dir + ".log")
        }
        return dir
    }

    private func rows(_ dir: String) throws -> [[String: Any]] {
        try String(contentsOfFile: dir + "/history.jsonl", encoding: .utf8).split(separator: "\n").map {
            try XCTUnwrap(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
    }

    /// The fields a round's learning and clock determine (not its wall-clock seconds).
    private func assertSame(_ a: [[String: Any]], _ b: [[String: Any]], file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(a.count, b.count, file: file, line: line)
        for (x, y) in zip(a, b) {
            let round = x["round"] as? Int ?? -1
            XCTAssertEqual(round, y["round"] as? Int, file: file, line: line)
            let (lx, ly) = (try XCTUnwrap(x["loss"] as? Double), try XCTUnwrap(y["loss"] as? Double))
            XCTAssertEqual(lx, ly, accuracy: 1e-6 * max(1, abs(ly)), "round \(round)", file: file, line: line)
            XCTAssertEqual(x["accuracy"] as? Double, y["accuracy"] as? Double, "round \(round)", file: file, line: line)
            for key in ["fit_clients", "failures"] {
                XCTAssertEqual(x[key] as? Int, y[key] as? Int, "round \(round) \(key)", file: file, line: line)
            }
            for key in ["virtual_seconds", "virtual_time", "staleness"] {
                XCTAssertEqual(x[key] as? Double, y[key] as? Double, "round \(round) \(key)", file: file, line: line)
            }
        }
    }

    /// Runs `arguments` to the end (the uninterrupted reference), then again with a checkpoint,
    /// stopped by `signal` once `unit` `after` is logged, then resumed; returns the reference's
    /// rows, the resumed rows, the round the checkpoint held and the resumed run's log.
    private func interruptAndResume(_ arguments: [String], rounds: Int, unit: String, after: Int, signal: Int32,
                                    status: Int32?) throws -> (reference: [[String: Any]], resumed: [[String: Any]], kept: Int, log: String) {
        let reference = folder(), interrupted = folder()
        let all = ["simulate", "--rounds", "\(rounds)"] + arguments
        let whole = try runProgram(try flwrBinaryPath(), all + ["--out", reference])
        XCTAssertEqual(whole.status, 0, whole.output)

        let checkpointed = all + ["--out", interrupted, "--checkpoint-dir", interrupted + "/ckpt"]
        let first = try ChildProcess.flwr(checkpointed, log: interrupted + ".log")
        XCTAssertNotNil(first.waitForLog("\(unit) \(after)/\(rounds): \\d+ ok", seconds: 300), first.log)
        first.send(signal)
        let code = first.wait(seconds: 300)
        if let status { XCTAssertEqual(code, status, first.log) }
        let before = try rows(interrupted)
        let second = try runProgram(try flwrBinaryPath(), checkpointed + ["--resume"])
        XCTAssertEqual(second.status, 0, second.output)
        // The checkpoint holds the last round completed before the signal (SIGKILL may land
        // between a checkpoint and its log line, so the log is not the reference).
        let marker = "resuming from \(interrupted)/ckpt/checkpoint.flwr: round "
        let kept = try XCTUnwrap(second.output.components(separatedBy: marker).dropFirst().first
            .flatMap { Int($0.prefix { $0.isNumber }) }, second.output)
        XCTAssertGreaterThanOrEqual(kept, after)
        XCTAssertLessThan(kept, rounds, "the run finished before the signal landed; raise --rounds:\n\(first.log)")
        // Continued, not started over: nothing up to the checkpoint ran again (its rows keep the
        // interrupted run's wall-clock seconds, which no second run would repeat exactly).
        XCTAssertFalse(second.output.contains("\(unit) 1/\(rounds):"), second.output)
        XCTAssertTrue(second.output.contains("\(unit) \(kept + 1)/\(rounds):"), second.output)
        let after = try rows(interrupted)
        for old in before where (old["round"] as? Int ?? .max) <= kept {
            let round = try XCTUnwrap(old["round"] as? Int)
            XCTAssertEqual(after[round - 1]["seconds"] as? Double, old["seconds"] as? Double, "round \(round) was not rerun")
        }
        XCTAssertFalse(before.isEmpty, "history.jsonl had rounds before the resume")
        return (try rows(reference), after, kept, second.output)
    }

    private let common = ["--alpha", "0.5", "--seed", "5", "--model", "mlp", "--hidden", "32",
                          "--max-train-examples", "300", "--max-test-examples", "1000", "--parallel", "2"]

    /// Virtual clients on the virtual clock, SIGTERM after round 3: exit 143, then --resume
    /// writes the uninterrupted run's history (sampling and shuffling derive from the seed and
    /// the round; the clock continues from the checkpoint's virtual time).
    func testVirtualSyncRunStoppedBySIGTERMResumesToTheUninterruptedHistory() throws {
        let rounds = 100
        let run = try interruptAndResume(common + ["--transport", "virtual", "--clients", "20", "--clients-per-round", "4",
                                                   "--client-speed", "lognormal:1"],
                                         rounds: rounds, unit: "round", after: 3, signal: SIGTERM, status: 143)
        XCTAssertEqual(run.resumed.map { $0["round"] as? Int }, (1 ... rounds).map { $0 })
        try assertSame(run.resumed, run.reference)
        XCTAssertTrue(run.log.contains("resuming after round \(run.kept) of \(rounds)"), run.log)
    }

    /// TCP clients (each on its own loopback connection), killed with SIGKILL after round 2 — a
    /// crash, nothing is flushed — then resumed: the same history as the uninterrupted run.
    func testTCPSyncRunKilledHardResumesToTheUninterruptedHistory() throws {
        let rounds = 100
        let run = try interruptAndResume(common + ["--transport", "tcp", "--clients", "4"],
                                         rounds: rounds, unit: "round", after: 2, signal: SIGKILL, status: nil)
        XCTAssertEqual(run.resumed.map { $0["round"] as? Int }, (1 ... rounds).map { $0 })
        try assertSame(run.resumed, run.reference)
    }

    /// FedBuff stopped by SIGINT after update 2 (exit 130): the checkpoint holds the clients in
    /// flight and the sampler's position, so the resumed run sends those clients their versions
    /// again, continues the version count, the sampler and the virtual clock, and writes the
    /// uninterrupted run's history.
    func testAsyncRunStoppedBySIGINTResumesToTheUninterruptedHistory() throws {
        let rounds = 150
        let run = try interruptAndResume(common + ["--transport", "virtual", "--clients", "20", "--mode", "async",
                                                   "--concurrency", "6", "--buffer-size", "3", "--client-speed", "lognormal:1"],
                                         rounds: rounds, unit: "update", after: 2, signal: SIGINT, status: 130)
        XCTAssertEqual(run.resumed.map { $0["round"] as? Int }, (1 ... rounds).map { $0 })
        try assertSame(run.resumed, run.reference)
        XCTAssertTrue(run.log.contains("resuming after update \(run.kept) of \(rounds): 5 clients that were in flight are sent their versions again"), run.log)
        XCTAssertEqual(run.resumed.compactMap { $0["virtual_time"] as? Double }.count, rounds)
    }
}
