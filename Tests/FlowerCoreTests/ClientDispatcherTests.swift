// The client-side dispatch both transports frame: an ok result passes unchanged; a non-ok status,
// a thrown error or a failed framing becomes the failure reply of the instruction's kind (status,
// round, no payload), logged once; a client that throws after its task was cancelled gets no
// reply (CancellationError), while a CancellationError thrown without cancellation is a failure.
import FlowerCore
import Logging
import Synchronization
import Testing
import TestSupport

/// A `Client` whose three calls are the closures it is given (each unset call fails the test).
private struct ScriptedClient: Client {
    var onGetParameters: @Sendable (GetParametersIns) async throws -> ParametersRes = { _ in throw TestFailure("unexpected getParameters") }
    var onFit: @Sendable (FitIns) async throws -> FitRes = { _ in throw TestFailure("unexpected fit") }
    var onEvaluate: @Sendable (EvaluateIns) async throws -> EvaluateRes = { _ in throw TestFailure("unexpected evaluate") }

    func getParameters(_ ins: GetParametersIns) async throws -> ParametersRes { try await onGetParameters(ins) }
    func fit(_ ins: FitIns) async throws -> FitRes { try await onFit(ins) }
    func evaluate(_ ins: EvaluateIns) async throws -> EvaluateRes { try await onEvaluate(ins) }
}

@Suite struct ClientDispatcherTests {
    let log = LogCapture()

    private func dispatcher(_ client: ScriptedClient) -> ClientDispatcher { ClientDispatcher(client: client, logger: log.logger) }

    var warnings: [String] { log.lines.filter { $0.level == .warning }.map(\.message) }

    @Test("an ok result is the reply as it is; a fit's success is one info line")
    func okPassesThrough() async throws {
        let global = try model([1, 2, 3])
        let client = ScriptedClient(
            onGetParameters: { _ in ParametersRes(parameters: try model([4, 5, 6])) },
            onFit: { ins in
                var p = ins.parameters
                for i in p.values.indices { p.values[i] *= 2 }
                return FitRes(round: ins.round, parameters: p, numExamples: 12, metrics: ["loss": .double(0.25)])
            },
            onEvaluate: { ins in EvaluateRes(round: ins.round, loss: 0.5, numExamples: 9, metrics: ["accuracy": .double(0.75)]) })
        let d = dispatcher(client)

        guard case .parameters(let p) = try await d.reply(to: .getParameters(GetParametersIns())) else { Issue.record("not parameters"); return }
        #expect(p.status == .ok && p.parameters.values == [4, 5, 6] && p.parameters.layout == global.layout)

        guard case .fit(let f) = try await d.reply(to: .fit(FitIns(round: 3, parameters: global))) else { Issue.record("not fit"); return }
        #expect(f.status == .ok && f.round == 3 && f.numExamples == 12)
        #expect(f.parameters.values == [2, 4, 6])
        #expect(f.metrics == ["loss": .double(0.25)])

        guard case .evaluate(let e) = try await d.reply(to: .evaluate(EvaluateIns(round: 3, parameters: global))) else { Issue.record("not evaluate"); return }
        #expect(e.status == .ok && e.round == 3 && e.loss == 0.5 && e.numExamples == 9 && e.metrics == ["accuracy": .double(0.75)])

        #expect(warnings.isEmpty, "\(log.text)")
        #expect(log.lines.filter { $0.level == .info }.map(\.message) == ["round 3: trained on 12 examples"])
    }

    @Test("a non-ok status keeps its code and message and loses its payload")
    func nonOkBecomesFailureReply() async throws {
        let global = try model([1, 2, 3])
        let client = ScriptedClient(
            onGetParameters: { _ in ParametersRes(status: Status(code: .getParametersFailed, message: "no model yet"), parameters: try model([9, 9, 9])) },
            onFit: { ins in
                FitRes(status: Status(code: .fitFailed, message: "out of memory"), round: 99, parameters: ins.parameters,
                       numExamples: 7, metrics: ["loss": .double(1)])
            },
            onEvaluate: { _ in EvaluateRes(status: Status(code: .badInstruction, message: "no test split"), round: 5, loss: 0.1, numExamples: 4) })
        let d = dispatcher(client)

        guard case .parameters(let p) = try await d.reply(to: .getParameters(GetParametersIns())) else { Issue.record("not parameters"); return }
        #expect(p.status == Status(code: .getParametersFailed, message: "no model yet"))
        #expect(p.parameters.values.isEmpty && p.parameters.layout.isEmpty)

        guard case .fit(let f) = try await d.reply(to: .fit(FitIns(round: 4, parameters: global))) else { Issue.record("not fit"); return }
        #expect(f.status == Status(code: .fitFailed, message: "out of memory"))
        // The instruction's round, not what the client wrote; no parameters, examples or metrics.
        #expect(f.round == 4 && f.parameters.values.isEmpty && f.numExamples == 0 && f.metrics.isEmpty)

        guard case .evaluate(let e) = try await d.reply(to: .evaluate(EvaluateIns(round: 4, parameters: global))) else { Issue.record("not evaluate"); return }
        // The client's own code is kept (the native wire carries it as it is).
        #expect(e.status == Status(code: .badInstruction, message: "no test split"))
        #expect(e.round == 4 && e.loss.isNaN && e.numExamples == 0 && e.metrics.isEmpty)

        #expect(warnings == ["getParameters failed: no model yet", "fit for round 4 failed: out of memory",
                             "evaluate for round 4 failed: no test split"])
        #expect(!log.contains("trained on"))
    }

    @Test("a thrown error is the kind's failure status carrying the error's text")
    func thrownErrorBecomesFailureReply() async throws {
        let global = try model([1, 2, 3])
        let client = ScriptedClient(
            onGetParameters: { _ in throw TestFailure("disk gone") },
            onFit: { _ in throw TestFailure("NaN loss at step 3") },
            onEvaluate: { _ in throw TestFailure("no data") })
        let d = dispatcher(client)

        guard case .parameters(let p) = try await d.reply(to: .getParameters(GetParametersIns())) else { Issue.record("not parameters"); return }
        #expect(p.status == Status(code: .getParametersFailed, message: "disk gone") && p.parameters.values.isEmpty)

        guard case .fit(let f) = try await d.reply(to: .fit(FitIns(round: 2, parameters: global))) else { Issue.record("not fit"); return }
        #expect(f.status == Status(code: .fitFailed, message: "NaN loss at step 3"))
        #expect(f.round == 2 && f.parameters.values.isEmpty && f.numExamples == 0)

        guard case .evaluate(let e) = try await d.reply(to: .evaluate(EvaluateIns(round: 2, parameters: global))) else { Issue.record("not evaluate"); return }
        #expect(e.status == Status(code: .evaluateFailed, message: "no data") && e.round == 2 && e.loss.isNaN && e.numExamples == 0)

        #expect(warnings == ["getParameters failed: disk gone", "fit for round 2 failed: NaN loss at step 3", "evaluate for round 2 failed: no data"])
    }

    @Test("framing that throws on an ok result frames the failure reply instead; on a failure it propagates")
    func framingFailure() async throws {
        let global = try model([1, 2, 3])
        let client = ScriptedClient(onFit: { ins in FitRes(round: ins.round, parameters: ins.parameters, numExamples: 3) },
                                    onEvaluate: { _ in throw TestFailure("no data") })
        let d = dispatcher(client)
        let seen = Mutex<[Status]>([])
        let framed = try await d.reply(to: .fit(FitIns(round: 6, parameters: global))) { reply -> String in
            seen.withLock { $0.append(reply.status) }
            guard reply.status.code == .ok else { return "failure: \(reply.status.message)" }
            throw TestFailure("top-k needs the FitIns layout")
        }
        #expect(framed == "failure: top-k needs the FitIns layout")
        #expect(seen.withLock { $0 } == [.ok, Status(code: .fitFailed, message: "top-k needs the FitIns layout")])
        #expect(warnings == ["fit for round 6 failed: top-k needs the FitIns layout"])
        #expect(!log.contains("trained on"), "a fit whose reply could not be framed did not succeed")

        await #expect(throws: TestFailure.self) {
            _ = try await d.reply(to: .evaluate(EvaluateIns(round: 6, parameters: global))) { _ -> Int in throw TestFailure("frame too large") }
        }
    }

    @Test("a client that throws after its task was cancelled gets no reply; CancellationError alone is a failure")
    func cancellation() async throws {
        let global = try model([1, 2, 3])
        let (entered, enteredOut) = AsyncStream.makeStream(of: Void.self)
        let client = ScriptedClient(onFit: { _ in
            enteredOut.yield()
            try await Task.sleep(for: .seconds(3600))  // throws CancellationError once the task is cancelled
            throw TestFailure("woke without cancellation")
        })
        let d = dispatcher(client)
        let framings = Atomic<Int>(0)
        let task = Task {
            try await d.reply(to: .fit(FitIns(round: 1, parameters: global))) { reply -> ClientReply in
                framings.add(1, ordering: .relaxed)
                return reply
            }
        }
        var waiting = entered.makeAsyncIterator()
        _ = await waiting.next()  // the client is inside fit
        task.cancel()
        let outcome = await task.result
        #expect(throws: CancellationError.self) { try outcome.get() }
        #expect(framings.load(ordering: .relaxed) == 0)
        #expect(warnings.isEmpty, "\(log.text)")

        // The same error from a client whose task was not cancelled (its own timeout, say) is a failed fit.
        let own = dispatcher(ScriptedClient(onFit: { _ in throw CancellationError() }))
        guard case .fit(let f) = try await own.reply(to: .fit(FitIns(round: 8, parameters: global))) else { Issue.record("not fit"); return }
        #expect(f.status == Status(code: .fitFailed, message: "\(CancellationError())") && f.round == 8)
    }
}
