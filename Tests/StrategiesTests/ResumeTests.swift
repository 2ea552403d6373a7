import TestSupport
import FedAvg
import FlowerCore
import Foundation
import Strategies
import Testing

/// A client that moves the model halfway towards its own target (a deterministic "training").
final class TowardsTarget: ClientProxy {
    let id: String
    let partition: Int? = nil
    let target: [Float]
    let examples: Int
    init(_ id: String, target: [Float], examples: Int) {
        self.id = id
        self.target = target
        self.examples = examples
    }
    func getParameters(_ ins: GetParametersIns, timeout: Duration) async throws -> ParametersRes { throw TestFailure("not called") }
    func fit(_ ins: FitIns, timeout: Duration) async throws -> FitRes {
        var p = ins.parameters
        for i in p.values.indices { p.values[i] += (target[i] - p.values[i]) / 2 }
        return FitRes(round: ins.round, parameters: p, numExamples: examples)
    }
    func evaluate(_ ins: EvaluateIns, timeout: Duration) async throws -> EvaluateRes { throw TestFailure("not called") }
    func finish(roundsCompleted: Int, reason: String) async {}
    func reconnect(seconds: Int, reason: String) async {}
}

/// Server optimiser state is in the checkpoint: a run stopped after round 2 and resumed gives the
/// same models and history, to the last bit, as an uninterrupted run.
@Suite struct ResumeTests {
    static let names = ["fedavgm", "fedadam", "fedyogi", "fedadagrad"]

    private func strategy(_ name: String) -> any Strategy {
        let base = FedAvg(fractionFit: 0.75, fractionEvaluate: 0, minFitClients: 2, minAvailableClients: 4, seed: 7,
                          initialParameters: flat([0, 1, -1]),
                          evaluateFn: { _, p in (Double(p.values[0]) + Double(p.values[1]), ["accuracy": .double(Double(p.values[2]))]) })
        switch name {
        case "fedavgm": return FedAvgM(base: base, serverLearningRate: 0.7, serverMomentum: 0.9)
        case "fedadam": return FedAdam(base: base, settings: FedOptSettings(eta: 0.05, beta1: 0.9, beta2: 0.99, tau: 1e-3))
        case "fedyogi": return FedYogi(base: base)
        default: return FedAdagrad(base: base)
        }
    }

    private func run(_ name: String, rounds: Int, checkpoint: String, resume: Bool) async throws -> FitSummary {
        let manager = InMemoryClientManager()
        let targets: [[Float]] = [[1, 2, 3], [-1, 0, 4], [2, 2, 2], [0.5, -3, 1]]
        for (i, t) in targets.enumerated() { _ = manager.register(TowardsTarget("c\(i)", target: t, examples: i + 1)) }
        let cp = resume ? try Checkpoint.read(from: checkpoint) : nil
        return try await Server(clientManager: manager, strategy: strategy(name),
                                options: ServerOptions(checkpointPath: checkpoint))
            .fit(numRounds: rounds, timeout: .seconds(30), resumingFrom: cp)
    }

    @Test(arguments: names)
    func resumedRunEqualsUninterruptedRunBitForBit(name: String) async throws {
        let dir = NSTemporaryDirectory() + "flwr-strategies-resume-\(name)-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let whole = try await run(name, rounds: 5, checkpoint: dir + "/a.ckpt", resume: false)
        _ = try await run(name, rounds: 2, checkpoint: dir + "/b.ckpt", resume: false)
        let saved = try Checkpoint.read(from: dir + "/b.ckpt")
        #expect(!saved.state.isEmpty, "the optimiser state is in the checkpoint")
        let resumed = try await run(name, rounds: 5, checkpoint: dir + "/b.ckpt", resume: true)

        #expect(whole.parameters.values.map(\.bitPattern) == resumed.parameters.values.map(\.bitPattern))
        #expect(whole.history.rounds.map { $0.loss?.bitPattern } == resumed.history.rounds.map { $0.loss?.bitPattern })
        #expect(whole.history.rounds.map { $0.accuracy?.bitPattern } == resumed.history.rounds.map { $0.accuracy?.bitPattern })
        #expect(whole.history.rounds.map(\.fitClients) == resumed.history.rounds.map(\.fitClients))

        // Without the state, resuming would differ: the momentum matters after round 2.
        var stateless = saved
        stateless.state = StrategyState()
        try stateless.write(to: dir + "/c.ckpt")
        let amnesic = try await run(name, rounds: 5, checkpoint: dir + "/c.ckpt", resume: true)
        #expect(amnesic.parameters.values != whole.parameters.values)
    }
}
