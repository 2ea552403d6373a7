// Lingering after training: each client that registers is finished and let go, woken by the
// registration itself (no polling), and cancelling the linger ends it at once.
import FlowerCore
import Synchronization
import Testing
@testable import FlowerRuntime

/// A client proxy that reports every Finish on a stream.
private final class FinishRecorder: ClientProxy {
    let id: String
    let partition: Int? = nil
    private let finished: AsyncStream<(String, Int, String)>.Continuation

    init(id: String, finished: AsyncStream<(String, Int, String)>.Continuation) {
        self.id = id
        self.finished = finished
    }

    func getParameters(_ ins: GetParametersIns, timeout: Duration) async throws -> ParametersRes { ParametersRes(parameters: Parameters()) }
    func fit(_ ins: FitIns, timeout: Duration) async throws -> FitRes { FitRes(round: ins.round, parameters: ins.parameters, numExamples: 1) }
    func evaluate(_ ins: EvaluateIns, timeout: Duration) async throws -> EvaluateRes { EvaluateRes(round: ins.round, loss: 0, numExamples: 1) }
    func finish(roundsCompleted: Int, reason: String) async { finished.yield((id, roundsCompleted, reason)) }
    func reconnect(seconds: Int, reason: String) async {}
}

struct LingerTests {
    @Test func lateClientsAreFinishedAsTheyRegisterUntilCancelled() async throws {
        let manager = InMemoryClientManager()
        let (stream, continuation) = AsyncStream<(String, Int, String)>.makeStream()
        var finishes = stream.makeAsyncIterator()
        // A client already connected when the linger starts is finished first.
        #expect(throws: Never.self) { try manager.register(FinishRecorder(id: "early", finished: continuation)).get() }
        let linger = Task { await Linger.finishLateClients(manager: manager, rounds: 3) }

        let first = try #require(await finishes.next())
        #expect(first.0 == "early" && first.1 == 3 && first.2 == "training already finished after 3 rounds")
        for id in ["late-1", "late-2"] {
            #expect(throws: Never.self) { try manager.register(FinishRecorder(id: id, finished: continuation)).get() }
            let next = try #require(await finishes.next())
            #expect(next.0 == id)
        }
        linger.cancel()
        #expect(await linger.value == 3)
        #expect(manager.count == 0)
    }
}
