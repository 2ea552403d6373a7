import FedAvg
import FlowerCore
import Foundation
import TestSupport
import XCTest

/// SIGTERM cancels the task running `fit`: a round cut short is not recorded. (Before, the fits
/// the cancellation interrupted came back as failures, the strategy — accepting failures —
/// aggregated the others, and that partial round was checkpointed as if it had run whole, so a
/// resumed run continued from a model the uninterrupted run never had.)
final class ServerCancellationTests: XCTestCase {
    func testARoundCutShortByCancellationIsNotRecorded() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("flwr-cancel-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (started, startedContinuation) = AsyncStream<Void>.makeStream()
        // "slow" answers round 1 at once and sleeps (cancellably) in round 2.
        let slow = FakeClient("slow", onFit: { ins, call in
            if call >= 1 {
                startedContinuation.yield()
                try await Task.sleep(for: .seconds(3600))  // the behaviour under test: a fit that never returns until cancelled
            }
            return FitRes(round: ins.round, parameters: ins.parameters, numExamples: 1)
        })
        let clients = [adder("a", delta: [1, 1, 1], numExamples: 1), adder("b", delta: [2, 2, 2], numExamples: 1), slow]
        let manager = InMemoryClientManager()
        for c in clients { _ = manager.register(c) }
        let strategy = FedAvg(fractionEvaluate: 0, minFitClients: 1, minAvailableClients: 3, acceptFailures: true,
                              initialParameters: try model([0, 0, 0]))
        let options = ServerOptions(historyPath: dir + "/history.jsonl", checkpointPath: dir + "/checkpoint.flwr")
        let server = Server(clientManager: manager, strategy: strategy, options: options)
        let run = Task { try await server.fit(numRounds: 3, timeout: .seconds(3600)) }
        var iterator = started.makeAsyncIterator()
        _ = await iterator.next()   // round 2 is under way: "a" and "b" may have answered, "slow" has not
        run.cancel()
        do {
            _ = try await run.value
            XCTFail("a cancelled run returned a summary")
        } catch let error as ServerError {
            guard case .cancelled(let after) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(after, 1)
        }
        let checkpoint = try Checkpoint.read(from: dir + "/checkpoint.flwr")
        XCTAssertEqual(checkpoint.round, 1, "the checkpoint of the last whole round stands")
        XCTAssertEqual(checkpoint.history.rounds.map(\.fitClients), [3])
        // Round 1: the average of [1,1,1], [2,2,2] and [0,0,0] (slow sent the model back) = [1,1,1].
        XCTAssertEqual(checkpoint.parameters.values, [1, 1, 1])
        let lines = try String(contentsOfFile: dir + "/history.jsonl", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 1, "history.jsonl holds round 1 only: \(lines)")
    }
}
