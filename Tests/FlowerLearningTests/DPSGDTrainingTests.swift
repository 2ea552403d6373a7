// DP-SGD where a model meets its data: the centralised run's target-ε stop, and a federated
// site's ledger (charged before each fit, refusing a round past the budget, surviving a restart).
import CNNModel
import FlowerCore
import FlowerLearning
import Foundation
import Privacy
import Testing

private func data(count: Int, features: Int, seed: UInt64) -> ([Float], [Int32]) {
    var rng = SplitMix64(seed: seed)
    let y = (0..<count).map { _ in Int32.random(in: 0..<3, using: &rng) }
    let x = (0..<count * features).map { i in Float.random(in: -1...1, using: &rng) + (i % features == Int(y[i / features]) ? 1.5 : 0) }
    return (x, y)
}

private func mlp(seed: UInt64 = 1) throws -> Network {
    try Network(spec: Zoo.mlp(hidden: [8], classes: 3), input: .vector(6), classes: 3, seed: seed, threads: 1)
}

struct DPSGDTrainingTests {
    /// σ and a target ε both given: the run stops before the first step that would exceed it.
    @Test func centralRunStopsBeforeTheTargetEpsilon() throws {
        let (x, y) = data(count: 200, features: 6, seed: 2)
        let options = DPSGDOptions(maxGradNorm: 1, noiseMultiplier: 3, targetEpsilon: 2, delta: 1e-5)
        let run = try CentralDPSGD(options: options, datasetSize: 200, batchSize: 20, epochs: 30,
                                   random: SecureDPSGDRandom(.seeded(3)))
        #expect(run.plan.steps == 300)
        #expect(run.allowedSteps < run.plan.steps)
        #expect(try run.plan.epsilon(afterSteps: run.allowedSteps) <= 2)
        #expect(try run.plan.epsilon(afterSteps: run.allowedSteps + 1) > 2)
        let model = try mlp()
        var reports: [DPSGDEpochReport] = []
        while let r = try x.withUnsafeBufferPointer({ xs in try y.withUnsafeBufferPointer { ys in
            try run.epoch(model, images: xs, labels: ys, sgd: SGDConfig(learningRate: 0.1, momentum: 0))
        } }) {
            reports.append(r)
        }
        #expect(reports.map(\.steps).reduce(0, +) == run.allowedSteps)
        #expect((reports.last?.epsilon ?? 99) <= 2)
        #expect(reports.map(\.epsilon) == reports.map(\.epsilon).sorted())
        // It learned despite the noise: better than chance on its own data.
        let eval = try x.withUnsafeBufferPointer { xs in try y.withUnsafeBufferPointer { try model.evaluate(images: xs, labels: $0) } }
        #expect(eval.accuracy > 0.5, "accuracy \(eval.accuracy)")
    }

    /// σ solved from the target ε for the planned epochs, as Opacus's make_private_with_epsilon.
    @Test func centralRunSolvesSigmaForTheTarget() throws {
        let options = DPSGDOptions(maxGradNorm: 1, noiseMultiplier: nil, targetEpsilon: 3, delta: 1e-5)
        let run = try CentralDPSGD(options: options, datasetSize: 60_000, batchSize: 256, epochs: 5)
        #expect(run.allowedSteps == run.plan.steps)
        let eps = try run.plan.epsilon()
        #expect(eps <= 3 && eps > 2.99)
    }

    @Test func siteChargesItsLedgerRefusesPastTheBudgetAndRemembersAcrossRestarts() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("flwr-dpsgd-site-\(getpid())-\(UInt32.random(in: 0...UInt32.max))").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (x, y) = data(count: 100, features: 6, seed: 4)
        let options = DPSGDOptions(maxGradNorm: 1, noiseMultiplier: 2, targetEpsilon: 4, delta: 1e-5)
        func fit(_ site: DPSGDSite, round: Int) throws -> Double {
            try x.withUnsafeBufferPointer { xs in try y.withUnsafeBufferPointer { ys in
                try site.fit(try mlp(), images: xs, labels: ys, epochs: 2, batchSize: 10, sgd: SGDConfig(learningRate: 0.05),
                             round: round, adjustGradients: nil).epsilon
            } }
        }
        let site = try DPSGDSite(options: options, ledgerDirectory: dir, randomness: .seeded(5))
        let e1 = try fit(site, round: 1)
        #expect(abs(e1 - (try dpSGDEpsilon(samplingRate: 0.1, noiseMultiplier: 2, steps: 20, delta: 1e-5))) < 1e-12)
        // A restart: a new site on the same ledger continues the account.
        let restarted = try DPSGDSite(options: options, ledgerDirectory: dir, randomness: .seeded(6))
        #expect(abs(try restarted.epsilon() - e1) < 1e-12)
        var last = e1, rounds = 1
        while true {
            do {
                last = try fit(restarted, round: rounds + 1)
                rounds += 1
            } catch let error as PrivacyError {
                guard case let .overBudget(_, spent, wouldBe, budget, _) = error else { throw error }
                #expect(abs(spent - last) < 1e-12 && wouldBe > 4 && budget == 4)
                #expect(error.description.contains("budget is 4"))
                break
            }
            #expect(rounds < 100, "the budget never ran out")
            if rounds >= 100 { break }
        }
        #expect(last <= 4)
        // The refused round spent nothing.
        #expect(abs(try DPSGDSite(options: options, ledgerDirectory: dir).epsilon() - last) < 1e-12)
    }
}
