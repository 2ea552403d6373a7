// One DP-FedAvg round: clip, sum, noise, divide (the maths of DPFedAvg.swift's steps 2-4).
import FlowerCore
import Foundation
import Logging
import Synchronization

/// The streaming aggregation of one DP-FedAvg round: the clipped updates' sum in `Double`
/// (O(model) memory), then noise and the fixed denominator in `finish`.
struct DPFedAvgAggregator: FitAggregator {
    private let global: Parameters
    private var sum: [Double]
    private var count = 0
    private var withinClip = 0
    private let clipNorm: Double
    private let expectedClients: Double
    private let updateNoiseMultiplier: Double
    private let countStddev: Double
    private let clipping: DPClipping
    private let random: DPRandom
    private let state: StrategyState
    private let privacy: PrivacySpent
    private let logger: Logger
    private let round: Int

    init(context: FitRoundContext, clipNorm: Double, expectedClients: Double, updateNoiseMultiplier: Double,
         countStddev: Double, clipping: DPClipping, random: DPRandom, logger: Logger, privacy: PrivacySpent) {
        global = context.parameters
        sum = [Double](repeating: 0, count: context.parameters.count)
        self.clipNorm = clipNorm
        self.expectedClients = expectedClients
        self.updateNoiseMultiplier = updateNoiseMultiplier
        self.countStddev = countStddev
        self.clipping = clipping
        self.random = random
        self.state = context.state
        self.privacy = privacy
        self.logger = logger
        self.round = context.round
    }

    var resultCount: Int { count }

    /// DP-FedAvg clips each client's update on the server, which secure aggregation hides from it.
    var secureAggregationRefusal: String? {
        "DP-FedAvg clips each client's own update on the server, which secure aggregation hides from it; with --secagg clip on the clients instead (record-level DP-SGD, --dp-sgd) or drop --dp-noise-multiplier (DP-FedAvg)"
    }

    mutating func add(_ result: FitRes, from client: any ClientProxy) throws(ClientFailure) {
        if let mismatch = result.parameters.layoutMismatch(against: global) {
            throw ClientFailure(clientID: client.id, kind: .rejected, reason: "update refused: \(mismatch)")
        }
        guard let norm = updateNorm(result.parameters, from: global) else {
            throw ClientFailure(clientID: client.id, kind: .rejected, reason: "update refused: non-finite values")
        }
        let scale = clipScale(norm: norm, clipNorm: clipNorm)
        if norm <= clipNorm { withinClip += 1 }
        result.parameters.values.withUnsafeBufferPointer { u in
            global.values.withUnsafeBufferPointer { g in
                sum.withUnsafeMutableBufferPointer { s in
                    for i in 0 ..< s.count { s[i] += (Double(u[i]) - Double(g[i])) * scale }
                }
            }
        }
        count += 1
    }

    func finish(failures: [ClientFailure]) throws(StrategyRefusal) -> FitAggregate {
        guard count > 0 else {
            throw StrategyRefusal("no sampled client returned a usable update (\(failures.count) failure(s))")
        }
        let std = updateNoiseMultiplier * clipNorm
        let noise = random.gaussians(count: sum.count, std: std)
        var out = global
        out.values.withUnsafeMutableBufferPointer { w in
            for i in 0 ..< w.count { w[i] = Float(Double(w[i]) + (sum[i] + noise[i]) / expectedClients) }
        }
        var state = state
        var metrics: Metrics = ["dp_clip_norm": .double(clipNorm), "dp_noise_std": .double(std / expectedClients)]
        if case .adaptive(_, let gamma, let lr, _) = clipping {
            let noisyFraction = random.gaussian(mean: Double(withinClip), std: countStddev) / expectedClients
            let next = adaptiveClipUpdate(clipNorm: clipNorm, noisyFraction: noisyFraction, targetQuantile: gamma,
                                          learningRate: lr)
            state.scalars[DPFedAvg.clipNormKey] = next
            metrics["dp_next_clip_norm"] = .double(next)
            metrics["dp_noisy_unclipped_fraction"] = .double(noisyFraction)
        }
        let next = state.scalars[DPFedAvg.clipNormKey].map { String(format: ", next clip %.4g", $0) } ?? ""
        let line = String(format: "DP-FedAvg round %d: %d updates clipped to %.4g, noise std %.4g on the sum / %.4g expected clients",
                          round, count, clipNorm, std, expectedClients)
            + next + String(format: ", ε %.4g at δ %g", privacy.epsilon, privacy.delta)
        logger.info("\(line)")
        return FitAggregate(parameters: out, metrics: metrics, state: state, privacy: privacy)
    }
}

/// The factor that scales an update of L2 norm `norm` to at most `clipNorm`: min(1, C/‖Δ‖)
/// (Flower's `clip_inputs_inplace`; 1 for a zero update).
func clipScale(norm: Double, clipNorm: Double) -> Double {
    norm > clipNorm && norm > 0 ? clipNorm / norm : 1
}

/// Andrew et al. 2021's geometric update: C·exp(−η(b̃ − γ)), b̃ the noisy fraction of updates
/// that were within C (Flower's `clipping_norm *= math.exp(-clip_norm_lr * (fraction - quantile))`).
public func adaptiveClipUpdate(clipNorm: Double, noisyFraction: Double, targetQuantile: Double,
                               learningRate: Double) -> Double {
    clipNorm * exp(-learningRate * (noisyFraction - targetQuantile))
}

/// How many clients were connected when each round sampled (the m̄ = q·N of the aggregation).
final class PopulationLog: Sendable {
    private let byRound = Mutex<[Int: Int]>([:])

    func record(round: Int, clients: Int) { byRound.withLock { $0[round] = clients } }
    func clients(round: Int) -> Int? { byRound.withLock { $0[round] } }
}

/// A client manager view whose sampling returns a fixed, already chosen set (DP-FedAvg's
/// Poisson sample), whatever count the wrapped strategy asks for.
final class FixedSample: SamplingClientManager {
    private let base: any SamplingClientManager
    private let chosen: [any ClientProxy]

    init(base: any SamplingClientManager, chosen: [any ClientProxy]) {
        self.base = base
        self.chosen = chosen
    }

    func register(_ client: any ClientProxy) -> Result<Void, RegistrationRefusal> { base.register(client) }
    func unregister(id: String) { base.unregister(id: id) }
    func unregister(_ client: any ClientProxy) { base.unregister(client) }
    func replace(with client: any ClientProxy) -> (any ClientProxy)? { base.replace(with: client) }
    var count: Int { base.count }
    func all() -> [any ClientProxy] { base.all() }
    func waitFor(count: Int, timeout: Duration) async -> Bool { await base.waitFor(count: count, timeout: timeout) }
    func sample<G: RandomNumberGenerator>(count: Int, using generator: inout G) -> [any ClientProxy] { chosen }
}
