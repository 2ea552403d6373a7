// Accounting of record-level DP-SGD (Abadi et al. 2016): every step is one Poisson-subsampled
// Gaussian mechanism on a site's records (rate q = B/n, noise multiplier σ), the steps compose in
// RDP (Opacus's series, OpacusRDP.swift; Accountant.swift) and convert to (ε, δ) with the same bound as Opacus's
// `RDPAccountant` (`opacus/accountants/analysis/rdp.py`, `get_privacy_spent`). The neighbouring
// relation is add/remove of one record of the site's data; the sampling must be Poisson, which
// the engine's `trainDPSGD` does.
import Foundation

/// Opacus's default Rényi orders (`RDPAccountant.DEFAULT_ALPHAS`): 1.1, 1.2, …, 10.9, then
/// 12 … 63. DP-SGD accounts over these so that its ε is the number Opacus prints for the same
/// (q, σ, steps, δ) (Tests/PrivacyTests/DPSGDAccountingTests.swift compares them on a grid).
public let opacusRDPOrders: [Double] = (1 ..< 100).map { 1 + Double($0) / 10 } + (12 ..< 64).map { Double($0) }

/// A DP-SGD schedule on one dataset: sampling rate, steps, noise, δ.
public struct DPSGDPlan: Sendable, Equatable {
    /// Poisson sampling rate q.
    public var samplingRate: Double
    /// Steps per epoch (⌈n/B⌉ for a batch size, ⌈1/q⌉ for a rate).
    public var stepsPerEpoch: Int
    /// Epochs planned.
    public var epochs: Int
    /// Noise multiplier σ.
    public var noiseMultiplier: Double
    /// δ of the (ε, δ) guarantee.
    public var delta: Double

    /// A plan for `datasetSize` records in expected batches of `batchSize` (q = B/n), as
    /// Opacus's `make_private(poisson_sampling=True)` on a loader of that batch size.
    public init(datasetSize: Int, batchSize: Int, epochs: Int, noiseMultiplier: Double, delta: Double) throws(PrivacyError) {
        guard datasetSize > 0 else { throw .invalidPlan(name: "dataset size", value: datasetSize) }
        guard batchSize > 0, batchSize <= datasetSize else { throw .invalidPlan(name: "batch size", value: batchSize) }
        try self.init(samplingRate: Double(batchSize) / Double(datasetSize),
                      stepsPerEpoch: (datasetSize + batchSize - 1) / batchSize, epochs: epochs,
                      noiseMultiplier: noiseMultiplier, delta: delta)
    }

    /// A plan at sampling rate q with `stepsPerEpoch` steps per epoch (⌈1/q⌉ unless given).
    public init(samplingRate q: Double, stepsPerEpoch: Int? = nil, epochs: Int, noiseMultiplier: Double,
                delta: Double) throws(PrivacyError) {
        guard q.isFinite, q > 0, q <= 1 else { throw .invalidSamplingRate(q) }
        guard noiseMultiplier.isFinite, noiseMultiplier >= 0 else { throw .invalidNoiseMultiplier(noiseMultiplier) }
        guard delta.isFinite, delta > 0, delta < 1 else { throw .invalidDelta(delta) }
        guard epochs >= 0, epochs <= 1_000_000 else { throw .invalidPlan(name: "epochs", value: epochs) }
        let perEpoch = stepsPerEpoch ?? Int((1 / q).rounded(.up))
        guard perEpoch > 0, perEpoch <= 1 << 31 else { throw .invalidPlan(name: "steps per epoch", value: perEpoch) }
        samplingRate = q; self.stepsPerEpoch = perEpoch; self.epochs = epochs
        self.noiseMultiplier = noiseMultiplier; self.delta = delta
    }

    /// Steps of the whole plan.
    public var steps: Int { stepsPerEpoch * epochs }

    /// ε after `steps` steps (all of them unless given).
    public func epsilon(afterSteps: Int? = nil) throws(PrivacyError) -> Double {
        try dpSGDEpsilon(samplingRate: samplingRate, noiseMultiplier: noiseMultiplier, steps: afterSteps ?? steps, delta: delta)
    }

    /// The same plan with the smallest σ whose whole schedule costs at most `targetEpsilon`
    /// (Opacus's `make_private_with_epsilon`).
    public func solvingNoise(targetEpsilon: Double) throws(PrivacyError) -> DPSGDPlan {
        var plan = self
        plan.noiseMultiplier = try solveNoiseMultiplier(targetEpsilon: targetEpsilon, samplingRate: samplingRate,
                                                        rounds: steps, delta: delta, orders: opacusRDPOrders, series: .opacus)
        return plan
    }
}

/// ε of `steps` DP-SGD steps at Poisson rate q and noise multiplier σ, at δ (Opacus's orders).
public func dpSGDEpsilon(samplingRate q: Double, noiseMultiplier z: Double, steps: Int, delta: Double) throws(PrivacyError) -> Double {
    try computeEpsilon(noiseMultiplier: z, samplingRate: q, rounds: steps, delta: delta, orders: opacusRDPOrders, series: .opacus).epsilon
}

/// What `flwr privacy epsilon --mechanism dp-sgd` prints: ε of the plan, or with a target ε the
/// σ that reaches it and its ε; one JSON object when `json`.
public func dpSGDEpsilonReport(plan: DPSGDPlan, targetEpsilon: Double?, json: Bool) throws(PrivacyError) -> String {
    var solved = plan
    if let t = targetEpsilon { solved = try plan.solvingNoise(targetEpsilon: t) }
    let eps = try solved.epsilon()
    func number(_ x: Double) -> String { x.isFinite ? "\(x)" : "null" }
    if json {
        return "{\"epsilon\": \(number(eps)), \"delta\": \(number(solved.delta)), \"noise_multiplier\": \(number(solved.noiseMultiplier)), "
            + "\"sampling_rate\": \(number(solved.samplingRate)), \"steps\": \(solved.steps)}"
    }
    var out = targetEpsilon != nil ? String(format: "noise multiplier sigma = %.6g\n", solved.noiseMultiplier) : ""
    out += String(format: "ε = %.6g at δ = %g after %d DP-SGD steps (%d epochs of %d) at q = %.6g, sigma = %.6g (record-level, Poisson sampling, Opacus's RDP orders)",
                  eps, solved.delta, solved.steps, solved.epochs, solved.stepsPerEpoch, solved.samplingRate, solved.noiseMultiplier)
    return out
}
