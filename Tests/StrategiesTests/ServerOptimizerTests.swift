import TestSupport
import FedAvg
import FlowerCore
import Strategies
import Testing

/// The server-side optimisers against Flower's test cases (fedavgm_test.py, fedadagrad_test.py)
/// and against values computed by hand from the formulas in their files.
@Suite struct ServerOptimizerTests {
    /// Flower's fedavgm_test: two clients with identical weights, η ≈ 1, no momentum (and then
    /// μ ≈ 0 over two rounds) land on those weights.
    @Test func fedAvgMWithUnitRateAndNoMomentumIsFedAvg() throws {
        let w: [Float] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
        let s = FedAvgM(base: FedAvg(), serverLearningRate: 1 + 1e-9)
        let out = try aggregateRound(s, global: [Float](repeating: 0, count: 10), [(w, 1), (w, 2)])
        for (a, b) in zip(out.parameters.values, w) { #expect(abs(a - b) < 1e-5) }
        let m = FedAvgM(base: FedAvg(), serverLearningRate: 1 + 1e-9, serverMomentum: 1e-9)
        let r1 = try aggregateRound(m, round: 1, global: [Float](repeating: 0, count: 10), [(w, 1), (w, 2)])
        let r2 = try aggregateRound(m, round: 2, global: [Float](repeating: 0, count: 10), state: r1.state, [(w, 1), (w, 2)])
        for (a, b) in zip(r2.parameters.values, w) { #expect(abs(a - b) < 1e-5) }
    }

    /// μ = 0.5, η = 1, global 0, average 1 each round (global kept at 0 to isolate the velocity):
    /// round 1: g = −1, v = −1, w = 1; round 2: v = 0.5·(−1) + (−1) = −1.5, w = 1.5.
    @Test func fedAvgMVelocityAccumulatesByHand() throws {
        let m = FedAvgM(base: FedAvg(minFitClients: 1), serverLearningRate: 1, serverMomentum: 0.5)
        let r1 = try aggregateRound(m, round: 1, global: [0], [([1], 1)])
        #expect(r1.parameters.values == [1])
        #expect(r1.state.tensors["velocity"] == [-1])
        let r2 = try aggregateRound(m, round: 2, global: [0], state: r1.state, [([1], 1)])
        #expect(r2.parameters.values == [1.5])
        #expect(r2.state.tensors["velocity"] == [-1.5])
    }

    /// Flower's fedadagrad_test: η = 0.1, τ = 0.5, global 0.1, updates 0.2 and 1.0 (5 examples
    /// each): Δ = 0.5, m = 0.5, v = 0.25, w = 0.1 + 0.1·0.5/(0.5 + 0.5) = 0.15.
    @Test func fedAdagradMatchesFlowersCase() throws {
        let s = FedAdagrad(base: FedAvg(), settings: FedOptSettings(eta: 0.1, beta1: 0, beta2: 0, tau: 0.5))
        let out = try aggregateRound(s, global: [0.1, 0.1, 0.1, 0.1], [([0.2, 0.2, 0.2, 0.2], 5), ([1, 1, 1, 1], 5)])
        for a in out.parameters.values { #expect(abs(a - 0.15) < 1e-7) }
        #expect(out.state.tensors["v"]?.first.map { abs($0 - 0.25) < 1e-7 } == true)
    }

    /// FedAdam, two rounds by hand (η = 0.1, β₁ = 0.9, β₂ = 0.99, τ = 1e-3), global 0 and average
    /// 1 in both rounds (Δ = 1): round 1: m = 0.1, v = 0.01, η₁ = 0.1·√(1 − 0.99²)/(1 − 0.9²);
    /// round 2: m = 0.19, v = 0.0199, η₂ = 0.1·√(1 − 0.99³)/(1 − 0.9³).
    @Test func fedAdamTwoRoundsByHand() throws {
        let s = FedAdam(base: FedAvg(minFitClients: 1), settings: FedOptSettings(eta: 0.1, beta1: 0.9, beta2: 0.99, tau: 1e-3))
        let r1 = try aggregateRound(s, round: 1, global: [0], [([1], 1)])
        let eta1 = 0.1 * (1 - 0.99 * 0.99).squareRoot() / (1 - 0.9 * 0.9)
        #expect(abs(Double(r1.parameters.values[0]) - eta1 * 0.1 / (0.1 + 1e-3)) < 1e-6)
        let r2 = try aggregateRound(s, round: 2, global: [0], state: r1.state, [([1], 1)])
        let eta2 = 0.1 * (1 - 0.99 * 0.99 * 0.99).squareRoot() / (1 - 0.9 * 0.9 * 0.9)
        #expect(abs(Double(r2.parameters.values[0]) - eta2 * 0.19 / (0.0199.squareRoot() + 1e-3)) < 1e-6)
    }

    /// FedYogi by hand (η = 0.01, β₁ = 0.9, β₂ = 0.99, τ = 1e-3, Δ = 2): v₀ = 0 < Δ² = 4 so
    /// v = 0 + 0.01·4 = 0.04; m = 0.2; w = 0.01·0.2/(0.2 + 1e-3).
    @Test func fedYogiOneRoundByHand() throws {
        let out = try aggregateRound(FedYogi(base: FedAvg(minFitClients: 1)), global: [0], [([2], 1)])
        #expect(abs(Double(out.parameters.values[0]) - 0.01 * 0.2 / (0.2 + 1e-3)) < 1e-7)
        #expect(out.state.tensors["v"]?.first.map { abs($0 - 0.04) < 1e-7 } == true)
    }

    @Test func fedProxSendsProximalMuInEveryFitConfig() {
        let manager = InMemoryClientManager()
        for i in 0 ..< 3 { _ = manager.register(StubClient("c\(i)")) }
        let s = FedProx(base: FedAvg(onFitConfig: { _ in ["lr": .double(0.1)] }), proximalMu: 0.01)
        let calls = s.configureFit(round: 1, parameters: flat([0]), clientManager: manager)
        #expect(calls.count == 3)
        for c in calls {
            #expect(c.ins.config["proximal_mu"] == .double(0.01))
            #expect(c.ins.config["lr"] == .double(0.1))
        }
    }
}

extension ServerOptimizerTests {
    /// A state whose buffers do not match the model (another model's checkpoint) restarts the
    /// moments from zero rather than reading out of bounds.
    @Test func mismatchedStateBuffersRestartFromZero() throws {
        let s = FedAdam(base: FedAvg(minFitClients: 1), settings: FedOptSettings(eta: 0.1, beta1: 0.9, beta2: 0.99, tau: 1e-3))
        let fresh = try aggregateRound(s, global: [0, 0], [([1, 1], 1)])
        let odd = try aggregateRound(s, global: [0, 0], state: StrategyState(tensors: ["m": [5], "v": [1, 2, 3]]), [([1, 1], 1)])
        #expect(odd.parameters.values == fresh.parameters.values)
    }
}
