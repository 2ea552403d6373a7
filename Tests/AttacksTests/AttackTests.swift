import Attacks
import FlowerCore
import Testing

/// An honest client that moves the model by a fixed step.
struct Stepper: Client {
    let step: [Float]
    func getParameters(_ ins: GetParametersIns) async throws -> ParametersRes { ParametersRes(parameters: Parameters()) }
    func fit(_ ins: FitIns) async throws -> FitRes {
        var p = ins.parameters
        for i in p.values.indices { p.values[i] += step[i] }
        return FitRes(round: ins.round, parameters: p, numExamples: 10, metrics: ["train_loss": .double(1)])
    }
    func evaluate(_ ins: EvaluateIns) async throws -> EvaluateRes { EvaluateRes(round: ins.round, loss: 2, numExamples: 5) }
}

@Suite struct AttackTests {
    private func params(_ v: [Float]) throws -> Parameters { try Parameters(shapes: [("w", [v.count])], values: v) }

    private func attacked(_ kind: AttackKind, scale: Double = 10, round: Int = 1, partition: Int = 0) async throws -> FitRes {
        let c = MaliciousClient(wrapping: Stepper(step: [3, 4, 0]),
                                settings: AttackSettings(kind: kind, scale: scale, claimedExamples: 777, seed: 5),
                                partition: partition)
        return try await c.fit(FitIns(round: round, parameters: try params([1, 1, 1])))
    }

    @Test func signFlipSendsTheReversedScaledStep() async throws {
        let r = try await attacked(.signFlip)
        #expect(r.parameters.values == [1 - 30, 1 - 40, 1])
        #expect(r.metrics["attack"] == .string("sign-flip"))
        #expect(r.metrics["train_loss"] == .double(1), "the honest metrics stay")
    }

    @Test func scaleSendsTheAmplifiedStep() async throws {
        let r = try await attacked(.scale)
        #expect(r.parameters.values == [31, 41, 1])
    }

    /// A random direction whose norm is s × the honest ‖(3, 4, 0)‖ = 50, reproducible per
    /// (seed, round, partition) and different across them.
    @Test func gaussianHasTheHonestNormTimesScaleAndIsSeeded() async throws {
        let r = try await attacked(.gaussian)
        let d = r.parameters.values.map { Double($0) - 1 }
        let norm = d.map { $0 * $0 }.reduce(0, +).squareRoot()
        #expect(abs(norm - 50) < 1e-4)
        #expect(try await attacked(.gaussian).parameters == r.parameters)
        #expect(try await attacked(.gaussian, round: 2).parameters != r.parameters)
        #expect(try await attacked(.gaussian, partition: 1).parameters != r.parameters)
    }

    @Test func nanAndClaimExamples() async throws {
        let n = try await attacked(.nan)
        #expect(n.parameters.values[0].isNaN)
        #expect(n.parameters.values[1] == 5)
        let c = try await attacked(.claimExamples)
        #expect(c.numExamples == 777)
        #expect(c.parameters.values == [4, 5, 1], "the update itself is honest")
    }

    @Test func labelFlipIsAFixedPointFreeInvolutionOnTenClasses() {
        let labels: [Int32] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
        let flipped = flipLabels(labels, classes: 10)
        #expect(flipped == [9, 8, 7, 6, 5, 4, 3, 2, 1, 0])
        #expect(flipLabels(flipped, classes: 10) == labels)
        #expect(zip(labels, flipped).allSatisfy { $0 != $1 })
        let r = AttackKind.labelFlip
        #expect(r.changesData)
    }

    @Test func evaluationStaysHonest() async throws {
        let c = MaliciousClient(wrapping: Stepper(step: [1]), settings: AttackSettings(kind: .signFlip), partition: 0)
        let e = try await c.evaluate(EvaluateIns(round: 1, parameters: try params([0])))
        #expect(e.loss == 2)
        #expect(e.numExamples == 5)
    }
}
