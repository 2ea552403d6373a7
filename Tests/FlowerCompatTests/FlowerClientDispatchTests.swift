// The Flower client's framing of FlowerCore's client dispatch: a failed or throwing `Client`
// answers with Flower's failure code of the kind (2, 3, 4) and its message, and the Join stream
// goes on (a throwing fit used to end the run); tensors that do not fit the local model still end
// the run before the client is called. Directly, and over a real HTTP/2 socket against this
// package's Flower-protocol server.
@testable import FlowerCompat
import FlowerCore
import Logging
import Synchronization
import Testing

private struct Broken: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// A `Client` whose calls are the closures it is given; it records the rounds of the FitIns it gets.
private final class ScriptedClient: Client {
    let model: Parameters
    let fits = Mutex<[Int]>([])
    let onFit: @Sendable (FitIns, Int) throws -> FitRes
    let onEvaluate: @Sendable (EvaluateIns) throws -> EvaluateRes

    init(model: Parameters, onFit: @escaping @Sendable (FitIns, Int) throws -> FitRes,
         onEvaluate: @escaping @Sendable (EvaluateIns) throws -> EvaluateRes) {
        self.model = model
        self.onFit = onFit
        self.onEvaluate = onEvaluate
    }

    func getParameters(_ ins: GetParametersIns) async throws -> ParametersRes { ParametersRes(parameters: model) }
    func fit(_ ins: FitIns) async throws -> FitRes {
        let call = fits.withLock { $0.append(ins.round); return $0.count }
        return try onFit(ins, call)
    }
    func evaluate(_ ins: EvaluateIns) async throws -> EvaluateRes { try onEvaluate(ins) }
}

@Suite(.serialized) struct FlowerClientDispatchTests {
    static let logger = Logger(label: "test")

    /// `model` plus one.
    static func plusOne(_ ins: FitIns) -> FitRes {
        var p = ins.parameters
        for i in p.values.indices { p.values[i] += 1 }
        return FitRes(round: ins.round, parameters: p, numExamples: 30, metrics: ["loss": .double(0.5)])
    }

    @Test("failures answer with codes 2, 3, 4 and the message; a wrong layout ends the run before the client is called")
    func answers() async throws {
        let client = ScriptedClient(model: reference, onFit: { _, _ in throw Broken("NaN loss at step 3") },
                                    onEvaluate: { ins in
                                        EvaluateRes(status: Status(code: .evaluateFailed, message: "no test split"), round: ins.round, loss: 1, numExamples: 5)
                                    })
        let counter = FlowerCompatClient.Counter()
        let tensors = ParameterConversion.tensors(reference)
        func answer(_ m: FlowerServerMessage) async throws -> FlowerClientMessage {
            try await FlowerCompatClient.answer(m, client: client, reference: reference, counter: counter, logger: Self.logger)
        }

        #expect(try await answer(.getParameters(config: [:])) == .getParametersRes(status: .ok, parameters: tensors))
        #expect(try await answer(.fit(parameters: tensors, config: [:]))
            == .fitRes(status: FlowerStatus(code: 3, message: "NaN loss at step 3"), parameters: FlowerTensors(), numExamples: 0, metrics: [:]))
        #expect(counter.fits == 1 && client.fits.withLock { $0 } == [1])
        #expect(try await answer(.evaluate(parameters: tensors, config: [:]))
            == .evaluateRes(status: FlowerStatus(code: 4, message: "no test split"), loss: 0, numExamples: 0, metrics: [:]))

        // A FitIns for another model: the run ends with the reason, and no round is counted or trained.
        let other = ParameterConversion.tensors(try Parameters(shapes: [("w", [3, 3])], values: Array(repeating: 0, count: 9)))
        await #expect(throws: CompatError.self) { _ = try await answer(.fit(parameters: other, config: [:])) }
        #expect(counter.fits == 1 && client.fits.withLock { $0 } == [1])
    }

    @Test("a throwing fit fails that round only: the stream stays and the next FitIns is trained")
    func throwingFitKeepsTheStream() async throws {
        let recorder = RecordingManager()
        let server = try FlowerCompatServer(config: FlowerCompatServerConfig(host: "127.0.0.1", port: 0, reference: reference),
                                            manager: recorder, logger: Self.logger)
        let port = try await server.start()
        let client = ScriptedClient(model: reference, onFit: { ins, call in
            if call == 1 { throw Broken("out of memory") }
            return Self.plusOne(ins)
        }, onEvaluate: { ins in EvaluateRes(round: ins.round, loss: 0.25, numExamples: 4, metrics: ["accuracy": .double(0.75)]) })
        let run = Task {
            try await FlowerCompatClient.run(config: FlowerCompatClientConfig(host: "127.0.0.1", port: port), client: client, logger: Self.logger)
        }
        defer { run.cancel() }
        for _ in 0 ..< 3000 where recorder.everRegistered.isEmpty { try await Task.sleep(for: .milliseconds(10)) }
        let proxy = try #require(recorder.everRegistered.first as? FlowerClientProxy, "the client never joined")

        let failed = try await proxy.fit(FitIns(round: 1, parameters: reference), timeout: .seconds(30))
        #expect(failed.status == Status(code: .fitFailed, message: "Flower status 3: out of memory"))
        #expect(failed.parameters.values.isEmpty && failed.numExamples == 0)

        let trained = try await proxy.fit(FitIns(round: 2, parameters: reference), timeout: .seconds(30))
        #expect(trained.status == .ok && trained.numExamples == 30)
        #expect(trained.parameters.values == reference.values.map { $0 + 1 })
        let evaluated = try await proxy.evaluate(EvaluateIns(round: 2, parameters: reference), timeout: .seconds(30))
        #expect(evaluated.status == .ok && evaluated.loss == 0.25 && evaluated.numExamples == 4)

        await proxy.finish(roundsCompleted: 2, reason: "done")
        #expect(try await run.value == 2, "both FitIns were answered")
        #expect(client.fits.withLock { $0 } == [1, 2])
        await server.stop()
    }
}
