// DP-FedAvg against hand-computed values: clipping, the fixed denominator, uniform weights,
// the noise's distribution, adaptive clipping's update, Poisson sampling and the budget stop.
import FedAvg
import FlowerCore
import Foundation
import Synchronization
import XCTest
@testable import Privacy

/// An in-memory client whose fit adds `delta` to the global model and claims `numExamples`.
final class DeltaClient: ClientProxy {
    let id: String
    let partition: Int? = nil
    private let delta: [Float]
    private let numExamples: Int
    private let fits = Mutex(0)

    init(_ id: String, delta: [Float], numExamples: Int = 10) {
        self.id = id
        self.delta = delta
        self.numExamples = numExamples
    }

    var fitCount: Int { fits.withLock { $0 } }

    func getParameters(_ ins: GetParametersIns, timeout: Duration) async throws -> ParametersRes {
        ParametersRes(parameters: Parameters())
    }

    func fit(_ ins: FitIns, timeout: Duration) async throws -> FitRes {
        fits.withLock { $0 += 1 }
        var p = ins.parameters
        for i in p.values.indices { p.values[i] += delta[i] }
        return FitRes(round: ins.round, parameters: p, numExamples: numExamples)
    }

    func evaluate(_ ins: EvaluateIns, timeout: Duration) async throws -> EvaluateRes {
        EvaluateRes(round: ins.round, loss: 1, numExamples: 1)
    }

    func finish(roundsCompleted: Int, reason: String) async {}
    func reconnect(seconds: Int, reason: String) async {}
}

func flat(_ values: [Float]) throws -> Parameters {
    try Parameters(shapes: [("w", [values.count])], values: values)
}

func manager(_ clients: [DeltaClient]) -> InMemoryClientManager {
    let m = InMemoryClientManager()
    for c in clients { _ = m.register(c) }
    return m
}

final class DPFedAvgTests: XCTestCase {
    private func fedAvg(_ initial: Parameters, clients: Int) -> FedAvg {
        FedAvg(fractionEvaluate: 0, minFitClients: 1, minAvailableClients: clients, initialParameters: initial)
    }

    /// z = 0, q = 1, C = 1: Δ₁ = (3, 4, 0) has norm 5 and is clipped to (0.6, 0.8, 0); Δ₂ =
    /// (0.3, 0.4, 0) has norm 0.5 and is kept. m̄ = q·N = 2: w₁ = w₀ + (0.9, 1.2, 0)/2. Client 1
    /// claims 10⁹ examples: DP-FedAvg weighs every client the same.
    func testFixedClippingAndUniformWeightsGiveTheHandComputedModel() async throws {
        let clients = [DeltaClient("a", delta: [3, 4, 0], numExamples: 1_000_000_000),
                       DeltaClient("b", delta: [0.3, 0.4, 0], numExamples: 1)]
        let dp = try DPFedAvg(wrapping: fedAvg(try flat([1, 1, 1]), clients: 2),
                              config: DPFedAvgConfig(noiseMultiplier: 0, clipping: .fixed(clipNorm: 1), samplingRate: 1),
                              randomness: .seeded(1))
        let dir = NSTemporaryDirectory() + "flwr-privacy-tests-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let summary = try await Server(clientManager: manager(clients), strategy: dp,
                                       options: ServerOptions(checkpointPath: dir + "/checkpoint.flwr"))
            .fit(numRounds: 1, timeout: .seconds(30))
        // ε = ∞ survives the checkpoint's JSON header (stored as null).
        XCTAssertEqual(try Checkpoint.read(from: dir + "/checkpoint.flwr").history.rounds.first?.privacy?.epsilon, .infinity)
        let expected: [Float] = [1 + 0.45, 1 + 0.6, 1]
        for (got, want) in zip(summary.parameters.values, expected) {
            XCTAssertEqual(got, want, accuracy: 1e-6, "model \(summary.parameters.values) vs \(expected)")
        }
        let r = try XCTUnwrap(summary.history.rounds.first)
        XCTAssertEqual(r.fitMetrics["dp_clip_norm"], .double(1))
        XCTAssertEqual(r.fitMetrics["dp_noise_std"], .double(0))
        XCTAssertEqual(r.privacy?.epsilon, .infinity, "z = 0 is no privacy at all")
    }

    /// The denominator is the expected sample q·N, not the number of answers: with q = 1 and
    /// one of three clients failing (a non-finite update), the two others' sum is still divided by 3.
    func testFixedDenominatorIsTheExpectedSampleSize() async throws {
        let clients = [DeltaClient("a", delta: [0.3, 0, 0]), DeltaClient("b", delta: [0, 0.3, 0]),
                       DeltaClient("c", delta: [.nan, 0, 0])]
        let dp = try DPFedAvg(wrapping: fedAvg(try flat([0, 0, 0]), clients: 3),
                              config: DPFedAvgConfig(noiseMultiplier: 0, clipping: .fixed(clipNorm: 10), samplingRate: 1),
                              randomness: .seeded(2))
        let summary = try await Server(clientManager: manager(clients), strategy: dp).fit(numRounds: 1, timeout: .seconds(30))
        XCTAssertEqual(summary.parameters.values[0], 0.1, accuracy: 1e-7)
        XCTAssertEqual(summary.parameters.values[1], 0.1, accuracy: 1e-7)
        XCTAssertEqual(summary.history.rounds.first?.failures, 1)
    }

    /// Noise: four clients send no change, so w₁ − w₀ is pure noise of std z·C/m̄ = 1.5·2/4 = 0.75
    /// per coordinate. Over d = 40,000 coordinates the sample std has a standard error of about
    /// σ/√(2d); the test allows 5 of them. The mean must be 0 within 5σ/√d, and the share within
    /// ±σ must be Φ(1) − Φ(−1) = 0.682689 within 5√(p(1−p)/d) (a Gaussian, not just any spread).
    func testNoiseHasTheStatedStandardDeviation() async throws {
        let d = 40_000
        let clients = (0 ..< 4).map { DeltaClient("c\($0)", delta: [Float](repeating: 0, count: d)) }
        let dp = try DPFedAvg(wrapping: fedAvg(try flat([Float](repeating: 0, count: d)), clients: 4),
                              config: DPFedAvgConfig(noiseMultiplier: 1.5, clipping: .fixed(clipNorm: 2), samplingRate: 1),
                              randomness: .seeded(3))
        let summary = try await Server(clientManager: manager(clients), strategy: dp).fit(numRounds: 1, timeout: .seconds(60))
        let x = summary.parameters.values.map(Double.init)
        let sigma = 0.75
        let mean = x.reduce(0, +) / Double(d)
        let std = (x.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(d - 1)).squareRoot()
        XCTAssertEqual(std, sigma, accuracy: 5 * sigma / (2 * Double(d)).squareRoot(), "sample std \(std)")
        XCTAssertEqual(mean, 0, accuracy: 5 * sigma / Double(d).squareRoot(), "sample mean \(mean)")
        let p = 0.682689492137086
        let within = Double(x.filter { abs($0) <= sigma }.count) / Double(d)
        XCTAssertEqual(within, p, accuracy: 5 * (p * (1 - p) / Double(d)).squareRoot(), "share within 1σ: \(within)")
        let noiseStd = try XCTUnwrap(summary.history.rounds.first?.fitMetrics["dp_noise_std"]?.doubleValue)
        XCTAssertEqual(noiseStd, sigma, accuracy: 1e-12)
    }

    /// Adaptive clipping with z = 0 (no count noise): C₀ = 1, γ = 0.5, η = 0.2; update norms
    /// 0.5, 0.8, 0.9 and 3 leave 3 of 4 within C₀, so C₁ = exp(−0.2·(0.75 − 0.5)) = exp(−0.05)
    /// = 0.951229424500714. Round 2 clips with C₁ (norms 0.5, 0.8, 0.9 are within it, 3 is not:
    /// C₂ = C₁·exp(−0.05)), and C is carried in the strategy state (so in the checkpoint).
    func testAdaptiveClipNormFollowsTheHandComputedUpdate() async throws {
        let clients = [DeltaClient("a", delta: [0.5, 0]), DeltaClient("b", delta: [0, 0.8]),
                       DeltaClient("c", delta: [0.9, 0]), DeltaClient("d", delta: [0, 3])]
        let config = DPFedAvgConfig(noiseMultiplier: 0, clipping: .adaptive(initial: 1, targetQuantile: 0.5, learningRate: 0.2,
                                                                            clippedCountStddev: nil), samplingRate: 1)
        let dp = try DPFedAvg(wrapping: fedAvg(try flat([0, 0]), clients: 4), config: config, randomness: .seeded(4))
        let summary = try await Server(clientManager: manager(clients), strategy: dp).fit(numRounds: 2, timeout: .seconds(30))
        let c1 = 0.951229424500714
        let rounds = summary.history.rounds
        XCTAssertEqual(try XCTUnwrap(rounds[0].fitMetrics["dp_clip_norm"]?.doubleValue), 1, accuracy: 1e-15)
        XCTAssertEqual(try XCTUnwrap(rounds[0].fitMetrics["dp_next_clip_norm"]?.doubleValue), c1, accuracy: 1e-15)
        XCTAssertEqual(try XCTUnwrap(rounds[1].fitMetrics["dp_clip_norm"]?.doubleValue), c1, accuracy: 1e-15)
        XCTAssertEqual(try XCTUnwrap(rounds[1].fitMetrics["dp_next_clip_norm"]?.doubleValue), c1 * c1, accuracy: 1e-15)
        // Round 1: Σ = (0.5 + 0.9, 0.8 + 1·1) / 4; round 2 adds (1.4, 0.8 + C₁) / 4.
        XCTAssertEqual(Double(summary.parameters.values[0]), 2 * 1.4 / 4, accuracy: 1e-6)
        XCTAssertEqual(Double(summary.parameters.values[1]), (0.8 + 1 + 0.8 + c1) / 4, accuracy: 1e-6)
        XCTAssertEqual(adaptiveClipUpdate(clipNorm: 1, noisyFraction: 0.75, targetQuantile: 0.5, learningRate: 0.2), c1,
                       accuracy: 1e-15)
    }

    /// Adaptive clipping splits z between the update and the count (Andrew et al., Flower's
    /// compute_adaptive_noise_params): z = 1, σ_b = 1 → z_Δ = (1 − 1/4)^(−1/2) = 1.1547005383792515.
    func testAdaptiveNoiseSplitMatchesFlowersFormula() throws {
        let config = DPFedAvgConfig(noiseMultiplier: 1, clipping: .adaptive(initial: 0.1, targetQuantile: 0.5, learningRate: 0.2,
                                                                            clippedCountStddev: 1), samplingRate: 0.5)
        let dp = try DPFedAvg(wrapping: fedAvg(try flat([0]), clients: 1), config: config, randomness: .seeded(5))
        let split = try dp.updateNoiseMultiplier(expectedClients: 5)
        XCTAssertEqual(split.update, 1.1547005383792515, accuracy: 1e-14)
        XCTAssertEqual(split.countStddev, 1)
        // Default σ_b = max(m̄/20, z): m̄ = 100 → 5; m̄ = 10 → z = 1 (m̄/20 = 0.5 cannot reach z = 1).
        let byDefault = try DPFedAvg(wrapping: fedAvg(try flat([0]), clients: 1),
                                     config: DPFedAvgConfig(noiseMultiplier: 1, clipping: .adaptive(initial: 0.1, targetQuantile: 0.5,
                                                                                                    learningRate: 0.2, clippedCountStddev: nil),
                                                            samplingRate: 0.5))
        XCTAssertEqual(try byDefault.updateNoiseMultiplier(expectedClients: 100).countStddev, 5)
        XCTAssertEqual(try byDefault.updateNoiseMultiplier(expectedClients: 10).countStddev, 1)
        XCTAssertThrowsError(try DPFedAvg(wrapping: fedAvg(try flat([0]), clients: 1), config: DPFedAvgConfig(
            noiseMultiplier: 1, clipping: .adaptive(initial: 0.1, targetQuantile: 0.5, learningRate: 0.2, clippedCountStddev: 0.5),
            samplingRate: 0.5))) { error in
            XCTAssertEqual(error as? DPConfigError, .countNoiseTooSmall(noiseMultiplier: 1, clippedCountStddev: 0.5))
        }
    }

    /// Poisson sampling: over 20 rounds of 200 clients at q = 0.25 the number of fits is
    /// Binomial(4000, 0.25): 1000 ± 5·27.4.
    func testPoissonSamplingTakesEachClientWithProbabilityQ() async throws {
        let clients = (0 ..< 200).map { DeltaClient(String(format: "c%03d", $0), delta: [0]) }
        let dp = try DPFedAvg(wrapping: fedAvg(try flat([0]), clients: 200),
                              config: DPFedAvgConfig(noiseMultiplier: 1, clipping: .fixed(clipNorm: 1), samplingRate: 0.25),
                              randomness: .seeded(6))
        let m = manager(clients)
        var total = 0
        var sizes = Set<Int>()
        for round in 1 ... 20 {
            let n = dp.configureFit(round: round, parameters: try flat([0]), clientManager: m).count
            total += n
            sizes.insert(n)
        }
        XCTAssertEqual(Double(total), 1000, accuracy: 5 * (4000 * 0.25 * 0.75).squareRoot(), "fits \(total)")
        XCTAssertGreaterThan(sizes.count, 1, "Poisson samples vary in size; a fixed size means FedAvg's sampling leaked through")
    }

    /// ε after each round is the accountant's ε of that many rounds, and with a target between
    /// ε(2) and ε(3) the server runs 2 of 5 rounds, stops with the reason, keeps round 2's model
    /// in the checkpoint and writes ε to history.jsonl.
    func testBudgetStopsBeforeTheRoundThatWouldExceedIt() async throws {
        let q = 0.5, z = 1.0, delta = 1e-5
        let e2 = try computeEpsilon(noiseMultiplier: z, samplingRate: q, rounds: 2, delta: delta).epsilon
        let e3 = try computeEpsilon(noiseMultiplier: z, samplingRate: q, rounds: 3, delta: delta).epsilon
        let clients = (0 ..< 6).map { DeltaClient("c\($0)", delta: [0.01, 0.02]) }
        let dp = try DPFedAvg(wrapping: fedAvg(try flat([0, 0]), clients: 6),
                              config: DPFedAvgConfig(noiseMultiplier: z, clipping: .fixed(clipNorm: 1), samplingRate: q,
                                                     delta: delta, targetEpsilon: (e2 + e3) / 2),
                              randomness: .seeded(7))
        let dir = NSTemporaryDirectory() + "flwr-privacy-tests-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let options = ServerOptions(roundAttempts: 5, historyPath: dir + "/history.jsonl", checkpointPath: dir + "/checkpoint.flwr")
        let summary = try await Server(clientManager: manager(clients), strategy: dp, options: options)
            .fit(numRounds: 5, timeout: .seconds(30))
        XCTAssertEqual(summary.roundsCompleted, 2)
        let reason = try XCTUnwrap(summary.stopReason)
        XCTAssertTrue(reason.contains("round 3 would bring ε to"), reason)
        XCTAssertTrue(reason.contains("--dp-target-epsilon"), reason)
        let spent = summary.history.rounds.compactMap(\.privacy?.epsilon)
        XCTAssertEqual(spent.count, 2)
        XCTAssertEqual(spent[1], e2, accuracy: 1e-12)
        XCTAssertEqual(spent[0], try computeEpsilon(noiseMultiplier: z, samplingRate: q, rounds: 1, delta: delta).epsilon, accuracy: 1e-12)
        let checkpoint = try Checkpoint.read(from: dir + "/checkpoint.flwr")
        XCTAssertEqual(checkpoint.round, 2)
        XCTAssertEqual(checkpoint.parameters, summary.parameters)
        let lines = try String(contentsOfFile: dir + "/history.jsonl", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 2)
        XCTAssertTrue(lines[1].contains("\"epsilon\":\(e2),\"delta\":1e-05"), String(lines[1]))
    }

    func testUnusableSettingsAreTypedErrorsWithTheFlag() throws {
        let base = fedAvg(try flat([0]), clients: 1)
        func message(_ config: DPFedAvgConfig) -> String {
            switch Result(catching: { try DPFedAvg(wrapping: base, config: config) }) {
            case .success: return ""
            case .failure(let e): return "\(e)"
            }
        }
        XCTAssertTrue(message(DPFedAvgConfig(noiseMultiplier: -1, clipping: .fixed(clipNorm: 1), samplingRate: 0.5)).contains("--dp-noise-multiplier"))
        XCTAssertTrue(message(DPFedAvgConfig(noiseMultiplier: 1, clipping: .fixed(clipNorm: 0), samplingRate: 0.5)).contains("--dp-clip"))
        XCTAssertTrue(message(DPFedAvgConfig(noiseMultiplier: 1, clipping: .fixed(clipNorm: 1), samplingRate: 0)).contains("--fraction-fit"))
        XCTAssertTrue(message(DPFedAvgConfig(noiseMultiplier: 1, clipping: .fixed(clipNorm: 1), samplingRate: 0.5, delta: 1)).contains("--dp-delta"))
        XCTAssertTrue(message(DPFedAvgConfig(noiseMultiplier: 1, clipping: .adaptive(initial: 1, targetQuantile: 2, learningRate: 0.2,
                                                                                  clippedCountStddev: nil), samplingRate: 0.5)).contains("--dp-target-quantile"))
        struct Other: FedAvgBased {
            var base: FedAvg
            var name: String { "FedMedian" }
            func makeFitAggregator(_ context: FitRoundContext) -> any FitAggregator { base.makeFitAggregator(context) }
        }
        XCTAssertThrowsError(try DPFedAvg(wrapping: Other(base: base), config: DPFedAvgConfig(
            noiseMultiplier: 1, clipping: .fixed(clipNorm: 1), samplingRate: 0.5))) { error in
            XCTAssertEqual(error as? DPConfigError, .unsupportedStrategy("FedMedian"))
        }
    }
}

/// The generator of real runs: an AES-256-CTR keystream keyed by the kernel's CSPRNG.
final class KeystreamRandomTests: XCTestCase {
    /// Across block refills (8,192 draws each) the values keep changing, and their top bit is set
    /// about half the time: 20,000 draws, 10,000 ± 5·71.
    func testBlocksRefillWithFreshBits() {
        let g = KeystreamRandom()
        let draws = (0 ..< 20_000).map { _ in g.next() }
        XCTAssertEqual(Set(draws).count, draws.count, "64-bit draws should not repeat")
        XCTAssertNotEqual(Array(draws[0 ..< 8192]), Array(draws[8192 ..< 16384]), "a refill must not replay the block")
        let high = draws.filter { $0 >> 63 == 1 }.count
        XCTAssertEqual(Double(high), 10_000, accuracy: 355, "top bit set \(high) times")
    }

    /// Gaussian noise from the secure source has the requested std (40,000 draws, 5 standard
    /// errors), and two generators do not produce the same noise.
    func testSecureNoiseHasTheRequestedSpread() {
        let a = DPRandom(.system).gaussians(count: 40_000, std: 2)
        let b = DPRandom(.system).gaussians(count: 10, std: 2)
        XCTAssertNotEqual(Array(a.prefix(10)), b)
        let mean = a.reduce(0, +) / Double(a.count)
        let std = (a.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(a.count - 1)).squareRoot()
        XCTAssertEqual(std, 2, accuracy: 5 * 2 / (2 * Double(a.count)).squareRoot(), "sample std \(std)")
    }
}
