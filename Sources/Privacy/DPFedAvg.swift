// DP-FedAvg: user-level differential privacy by server-side clipping and Gaussian noise.
//
// McMahan, Ramage, Talwar, Zhang, "Learning Differentially Private Recurrent Language Models",
// ICLR 2018 (arXiv:1710.06963), with the adaptive clipping of Andrew, Thakkar, McMahan, Ramaswamy,
// "Differentially Private Learning with Adaptive Clipping", NeurIPS 2021 (arXiv:1905.03871).
// Flower's counterparts: flwr/server/strategy/dp_fixed_clipping.py
// (DifferentialPrivacyServerSideFixedClipping), dp_adaptive_clipping.py
// (DifferentialPrivacyServerSideAdaptiveClipping) and flwr/common/differential_privacy.py
// (clip_inputs_inplace, compute_stdv = z·C/num_sampled_clients, compute_adaptive_noise_params).
import FlowerCore
import Foundation
import Logging

/// How DP-FedAvg bounds each client's update.
public enum DPClipping: Sendable, Equatable {
    /// Every update is scaled to ‖Δ‖₂ ≤ C.
    case fixed(clipNorm: Double)
    /// Andrew et al. 2021: C starts at `initial` and follows the `targetQuantile` of the update
    /// norms, C ← C·exp(−η(b̃ − γ)), from a noisy count of the updates within C.
    /// `clippedCountStddev` (σ_b) defaults to max(m̄/20, z), m̄ the expected number of sampled
    /// clients: Andrew et al.'s m̄/20, raised to z where m̄/20 cannot reach z (z < 2σ_b is
    /// required; Flower raises an error instead, which rules out z = 1 below 40 clients).
    case adaptive(initial: Double, targetQuantile: Double, learningRate: Double, clippedCountStddev: Double?)
}

/// DP-FedAvg's parameters.
public struct DPFedAvgConfig: Sendable, Equatable {
    /// Noise multiplier z of the whole round (with adaptive clipping: of the combined update and
    /// count queries, as Flower's `noise_multiplier`), the z the accountant charges.
    public var noiseMultiplier: Double
    /// Fixed or adaptive clipping.
    public var clipping: DPClipping
    /// Probability q that a client takes part in a round (`--fraction-fit`).
    public var samplingRate: Double
    /// δ of the reported (ε, δ).
    public var delta: Double
    /// Stop before a round that would bring ε above this (nil: no limit, ε only reported).
    public var targetEpsilon: Double?

    /// A configuration; see the properties.
    public init(noiseMultiplier: Double, clipping: DPClipping, samplingRate: Double, delta: Double = 1e-5,
                targetEpsilon: Double? = nil) {
        self.noiseMultiplier = noiseMultiplier
        self.clipping = clipping
        self.samplingRate = samplingRate
        self.delta = delta
        self.targetEpsilon = targetEpsilon
    }
}

/// A DP-FedAvg setting that cannot work, with what to change.
public enum DPConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A value out of range: the flag, the value, the rule.
    case invalid(flag: String, value: Double, rule: String)
    /// Adaptive clipping's count noise is too small for the requested total z (Flower raises too).
    case countNoiseTooSmall(noiseMultiplier: Double, clippedCountStddev: Double)
    /// The wrapped strategy does not aggregate by averaging.
    case unsupportedStrategy(String)

    public var description: String {
        switch self {
        case .invalid(let flag, let value, let rule):
            return "\(flag) \(value) \(rule)"
        case .countNoiseTooSmall(let z, let s):
            return "--dp-noise-multiplier \(z) needs a clipped-count noise std above z/2, got --dp-clipped-count-stddev \(s); raise it, lower --dp-noise-multiplier, or omit it for the default max(expected clients per round / 20, z)"
        case .unsupportedStrategy(let name):
            return "DP-FedAvg replaces the aggregation by a noisy average of clipped updates; it wraps FedAvg or FedProx, not \(name): use --strategy fedavg or fedprox with the --dp-* flags"
        }
    }
}

/// DP-FedAvg as a strategy wrapper: the wrapped strategy configures the clients' training and
/// evaluates; this wrapper samples the clients and aggregates.
///
/// Per round t, with N clients connected and m̄ = q·N:
/// 1. **Poisson sampling**: each client takes part independently with probability q — the
///    sampling the accountant's bound assumes (Flower samples a fixed number without replacement,
///    which this bound does not cover). The wrapped strategy's `FitIns` go to the sampled clients.
/// 2. **Clipping**: Δᵢ = wᵢ − w scaled to ‖Δᵢ‖₂ ≤ Cₜ (Flower's `clip_inputs_inplace`).
///    Every client weighs the same: `numExamples` is ignored, since a client-controlled weight
///    would unbound one client's influence (Flower passes clipped updates to FedAvg's
///    example-weighted mean; we follow McMahan et al.'s uniform weighting).
/// 3. **Noise**: w ← w + (ΣΔᵢ + N(0, (z_Δ·Cₜ)²·I)) / m̄ — Gaussian noise of std z_Δ·Cₜ on the sum,
///    divided by the expected number of sampled clients. That is Flower's
///    `compute_stdv = z·C/num_sampled_clients` on the mean; the fixed denominator m̄ (McMahan
///    et al.'s estimator for Poisson sampling) keeps the sensitivity at Cₜ whatever the sample size.
/// 4. **Adaptive clipping** (Andrew et al.): bᵢ = 1 if ‖Δᵢ‖ ≤ Cₜ; b̃ = (Σbᵢ + N(0, σ_b²))/m̄
///    (Flower divides by the number of results, which is not a fixed-sensitivity query under
///    Poisson sampling); Cₜ₊₁ = Cₜ·exp(−η(b̃ − γ)). The update noise uses z_Δ = (z⁻² − (2σ_b)⁻²)^(−1/2) so that the
///    two queries together are a Gaussian mechanism of multiplier z (Flower's
///    `compute_adaptive_noise_params`). The noise of round t is scaled to Cₜ, the bound used to
///    clip in round t, as in the paper; Flower scales it to the already updated Cₜ₊₁.
/// 5. **Accounting**: ε after round t is the RDP accountant's ε of t subsampled Gaussian releases
///    (q, z) at δ; with a target ε, a round that would exceed it is not run (`stopReason`).
///
/// Guarantee: user-level (ε, δ)-DP of the sequence of released global models with respect to
/// adding or removing one client's whole data, under Poisson sampling, assuming the server is
/// trusted. Clients' fit metrics are not released by this wrapper (metrics hold only DP values).
public struct DPFedAvg: Strategy {
    /// The wrapped strategy (FedAvg or FedProx).
    public let inner: any Strategy
    /// The DP parameters.
    public let config: DPFedAvgConfig
    private let random: DPRandom
    private let population: PopulationLog
    /// RDP of one round at the accountant's orders (rounds compose by multiplication).
    private let roundRDP: [Double]
    private let orders: [Double]
    private let logger: Logger

    /// Key of the adaptive clipping norm in `StrategyState.scalars` (checkpointed).
    public static let clipNormKey = "dp.clip_norm"

    /// Wraps `inner`; noise and sampling from `randomness` (`.system` in real runs).
    public init(wrapping inner: any Strategy, config: DPFedAvgConfig, randomness: DPRandomness = .system,
                logger: Logger = Logger(label: "flwr.dpfedavg")) throws {
        guard ["FedAvg", "FedProx"].contains(inner.name) else { throw DPConfigError.unsupportedStrategy(inner.name) }
        let c = config
        guard c.noiseMultiplier.isFinite, c.noiseMultiplier >= 0 else {
            throw DPConfigError.invalid(flag: "--dp-noise-multiplier", value: c.noiseMultiplier, rule: "must be a finite number >= 0")
        }
        guard c.samplingRate > 0, c.samplingRate <= 1 else {
            throw DPConfigError.invalid(flag: "--fraction-fit", value: c.samplingRate, rule: "must be in (0, 1]")
        }
        guard c.delta > 0, c.delta < 1 else {
            throw DPConfigError.invalid(flag: "--dp-delta", value: c.delta, rule: "must be in (0, 1), e.g. 1e-5")
        }
        if let t = c.targetEpsilon, !(t > 0 && t.isFinite) {
            throw DPConfigError.invalid(flag: "--dp-target-epsilon", value: t, rule: "must be a positive number")
        }
        switch c.clipping {
        case .fixed(let clip):
            guard clip > 0, clip.isFinite else {
                throw DPConfigError.invalid(flag: "--dp-clip", value: clip, rule: "must be a positive number")
            }
        case .adaptive(let initial, let gamma, let lr, let sigmaB):
            guard initial > 0, initial.isFinite else {
                throw DPConfigError.invalid(flag: "--dp-clip", value: initial, rule: "(the initial clipping norm) must be a positive number")
            }
            guard gamma >= 0, gamma <= 1 else {
                throw DPConfigError.invalid(flag: "--dp-target-quantile", value: gamma, rule: "must be in [0, 1]")
            }
            guard lr > 0, lr.isFinite else {
                throw DPConfigError.invalid(flag: "--dp-clip-lr", value: lr, rule: "must be a positive number")
            }
            if let s = sigmaB, !(s >= 0 && s.isFinite) {
                throw DPConfigError.invalid(flag: "--dp-clipped-count-stddev", value: s, rule: "must be a number >= 0")
            }
            if let s = sigmaB, c.noiseMultiplier > 0, c.noiseMultiplier >= 2 * s {
                throw DPConfigError.countNoiseTooSmall(noiseMultiplier: c.noiseMultiplier, clippedCountStddev: s)
            }
        }
        self.inner = inner
        self.config = config
        self.random = DPRandom(randomness)
        self.population = PopulationLog()
        self.logger = logger
        self.orders = defaultRDPOrders
        self.roundRDP = try rdpPoissonSubsampledGaussian(samplingRate: c.samplingRate, noiseMultiplier: c.noiseMultiplier,
                                                         orders: orders)
    }

    public var name: String { "DPFedAvg(\(inner.name))" }
    public var seed: UInt64 { inner.seed }
    public var minAvailableClients: Int { inner.minAvailableClients }

    /// (ε, δ) after `rounds` rounds.
    public func epsilon(afterRounds rounds: Int) -> Double {
        guard rounds > 0 else { return 0 }
        let total = roundRDP.map { $0 * Double(rounds) }
        return (try? epsilonFromRDP(orders: orders, rdp: total, delta: config.delta).epsilon) ?? .infinity
    }

    /// The noise multiplier of the update query: z itself with fixed clipping; with adaptive
    /// clipping (z⁻² − (2σ_b)⁻²)^(−1/2) so the update and count queries together have multiplier z.
    public func updateNoiseMultiplier(expectedClients m: Double) throws(DPConfigError) -> (update: Double, countStddev: Double) {
        let z = config.noiseMultiplier
        guard case .adaptive(_, _, _, let sigmaB) = config.clipping else { return (z, 0) }
        guard z > 0 else { return (0, sigmaB ?? 0) }
        let s = sigmaB ?? max(m / 20, z)
        guard z < 2 * s else { throw .countNoiseTooSmall(noiseMultiplier: z, clippedCountStddev: s) }
        return (1 / (1 / (z * z) - 1 / (4 * s * s)).squareRoot(), s)
    }

    public func stopReason(beforeRound round: Int) -> String? {
        guard let target = config.targetEpsilon else { return nil }
        let next = epsilon(afterRounds: round)
        guard next > target else { return nil }
        let spent = epsilon(afterRounds: round - 1)
        return String(format: "privacy budget: round %d would bring ε to %.4g > --dp-target-epsilon %g (δ = %g); training stops after round %d with ε = %.4g",
                      round, next, target, config.delta, round - 1, spent)
    }

    public func initializeParameters() async throws -> Parameters? { try await inner.initializeParameters() }

    public func configureFit(round: Int, parameters: Parameters,
                             clientManager: any SamplingClientManager) -> [(client: any ClientProxy, ins: FitIns)] {
        let all = clientManager.all()
        population.record(round: round, clients: all.count)
        let chosen = random.poissonSample(all, rate: config.samplingRate)
        return inner.configureFit(round: round, parameters: parameters,
                                  clientManager: FixedSample(base: clientManager, chosen: chosen))
    }

    public func makeFitAggregator(_ context: FitRoundContext) -> any FitAggregator {
        let n = population.clients(round: context.round) ?? 0
        let expected = max(config.samplingRate * Double(n), Double.leastNormalMagnitude)
        let clip: Double
        switch config.clipping {
        case .fixed(let c): clip = c
        case .adaptive(let initial, _, _, _): clip = context.state.scalars[Self.clipNormKey] ?? initial
        }
        // Only an explicit σ_b ≤ z/2 throws, and init refuses it; the fallback is σ_b = z.
        let noise: (update: Double, countStddev: Double) = (try? updateNoiseMultiplier(expectedClients: expected))
            ?? (config.noiseMultiplier * 2 / 3.0.squareRoot(), config.noiseMultiplier)
        return DPFedAvgAggregator(context: context, clipNorm: clip, expectedClients: expected,
                                  updateNoiseMultiplier: noise.update, countStddev: noise.countStddev,
                                  clipping: config.clipping, random: random, logger: logger,
                                  privacy: PrivacySpent(epsilon: epsilon(afterRounds: context.round), delta: config.delta))
    }

    public func configureEvaluate(round: Int, parameters: Parameters,
                                  clientManager: any SamplingClientManager) -> [(client: any ClientProxy, ins: EvaluateIns)] {
        inner.configureEvaluate(round: round, parameters: parameters, clientManager: clientManager)
    }

    public func aggregateEvaluate(round: Int, results: [(client: any ClientProxy, res: EvaluateRes)],
                                  failures: [ClientFailure]) -> (loss: Double?, metrics: Metrics) {
        inner.aggregateEvaluate(round: round, results: results, failures: failures)
    }

    public func evaluate(round: Int, parameters: Parameters) async throws -> (loss: Double, metrics: Metrics)? {
        try await inner.evaluate(round: round, parameters: parameters)
    }
}
