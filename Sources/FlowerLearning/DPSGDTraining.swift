// Record-level DP-SGD where a model meets its data: centralised (`flwr train --dp-sgd`) and on a
// federated site (`flwr client/simulate --dp-sgd`). The engine (CNNModel/DPSGD.swift) runs the
// steps; the Privacy module plans them, accounts for them and supplies the kernel CSPRNG.
import CNNModel
import Foundation
import Privacy
import Synchronization

/// DP-SGD's Poisson samples and noise from the Privacy module's generator: the kernel CSPRNG
/// in every run (`.system`), a seeded generator in tests only.
public final class SecureDPSGDRandom: DPSGDRandomSource, Sendable {
    let random: DPRandom
    /// A source drawing from `randomness`.
    public init(_ randomness: DPRandomness = .system) { random = DPRandom(randomness) }
    public func poissonSample(count: Int, rate: Double) -> [Int] { random.poissonSampleIndices(count: count, rate: rate) }
    public func addGaussianNoise(_ values: UnsafeMutableBufferPointer<Float>, std: Double) {
        random.addGaussianNoise(values, std: std)
    }
}

/// What `flwr train --dp-sgd` and a DP-SGD site are given.
public struct DPSGDOptions: Sendable, Equatable {
    /// Clip norm C.
    public var maxGradNorm: Double
    /// Noise multiplier σ; nil: solved from `targetEpsilon` for the planned steps.
    public var noiseMultiplier: Double?
    /// ε the run (or the site, over all its rounds) may not exceed; nil: no limit.
    public var targetEpsilon: Double?
    /// δ of the guarantee.
    public var delta: Double
    /// Poisson sampling rate q; nil: q = batch size / dataset size.
    public var samplingRate: Double?
    /// Largest physical chunk of one forward/backward (memory bound).
    public var physicalBatch: Int

    /// Options as given.
    public init(maxGradNorm: Double, noiseMultiplier: Double?, targetEpsilon: Double?, delta: Double,
                samplingRate: Double? = nil, physicalBatch: Int = 256) {
        self.maxGradNorm = maxGradNorm; self.noiseMultiplier = noiseMultiplier; self.targetEpsilon = targetEpsilon
        self.delta = delta; self.samplingRate = samplingRate; self.physicalBatch = physicalBatch
    }

    /// The plan for `datasetSize` records, `epochs` epochs of expected batch `batchSize` (or the
    /// sampling rate), σ solved from the target ε when not given.
    public func plan(datasetSize: Int, batchSize: Int, epochs: Int) throws -> DPSGDPlan {
        guard noiseMultiplier != nil || targetEpsilon != nil else {
            throw PrivacyError.invalidNoiseMultiplier(.nan)
        }
        var plan: DPSGDPlan
        if let q = samplingRate {
            plan = try DPSGDPlan(samplingRate: q, epochs: epochs, noiseMultiplier: noiseMultiplier ?? 0, delta: delta)
        } else {
            plan = try DPSGDPlan(datasetSize: datasetSize, batchSize: min(batchSize, datasetSize), epochs: epochs,
                                 noiseMultiplier: noiseMultiplier ?? 0, delta: delta)
        }
        if noiseMultiplier == nil, let target = targetEpsilon { plan = try plan.solvingNoise(targetEpsilon: target) }
        return plan
    }

    func settings(_ plan: DPSGDPlan) -> DPSGDSettings {
        DPSGDSettings(maxGradNorm: maxGradNorm, noiseMultiplier: plan.noiseMultiplier, samplingRate: plan.samplingRate,
                      physicalBatch: physicalBatch)
    }
}

/// One epoch of centralised DP-SGD, as reported to the progress line and the metrics file.
public struct DPSGDEpochReport: Sendable, Equatable {
    /// Epoch, from 1.
    public var epoch: Int
    /// Steps taken in it (fewer than planned when the target ε stopped it).
    public var steps: Int
    /// Examples its Poisson samples drew.
    public var examples: Int
    /// ε spent after it, at the plan's δ.
    public var epsilon: Double
    /// Mean training loss over its sampled examples.
    public var loss: Double
    /// Fraction of its examples whose gradient was clipped.
    public var clippedFraction: Double
}

/// Centralised DP-SGD over a whole dataset (`flwr train --dp-sgd`), epoch by epoch: the plan's
/// σ (solved from the target ε when not given, as Opacus's `make_private_with_epsilon`), and
/// with both σ and a target ε, a stop before the first step that would take ε past the target.
public final class CentralDPSGD {
    /// The schedule (q, steps per epoch, epochs, σ, δ).
    public let plan: DPSGDPlan
    /// The options given.
    public let options: DPSGDOptions
    /// Steps the target ε allows (all planned steps without a target).
    public let allowedSteps: Int
    /// Steps taken so far.
    public private(set) var stepsDone = 0
    let random: any DPSGDRandomSource
    var epochsDone = 0
    /// The run's optimiser: made by the first epoch, its momentum carried into the next ones.
    var optimizer: SGDOptimizer?

    /// A run of `epochs` epochs over `datasetSize` records in expected batches of `batchSize`.
    public init(options: DPSGDOptions, datasetSize: Int, batchSize: Int, epochs: Int,
                random: any DPSGDRandomSource = SecureDPSGDRandom()) throws {
        self.options = options
        plan = try options.plan(datasetSize: datasetSize, batchSize: batchSize, epochs: epochs)
        self.random = random
        var allowed = plan.steps
        if let target = options.targetEpsilon, try plan.epsilon() > target {
            // The largest step count within the target (ε grows with the steps): bisection.
            var lo = 0, hi = plan.steps
            while lo < hi {
                let mid = (lo + hi + 1) / 2
                if try plan.epsilon(afterSteps: mid) <= target { lo = mid } else { hi = mid - 1 }
            }
            allowed = lo
        }
        allowedSteps = allowed
    }

    /// One line for the log: σ, C, q, steps and the ε the whole run will reach.
    public func summary() throws -> String {
        let eps = try plan.epsilon(afterSteps: allowedSteps)
        var line = String(format: "DP-SGD: sigma %.4g, C %.4g, q %.4g (Poisson), %d steps/epoch; epsilon %.4g at delta %g after %d steps",
                          plan.noiseMultiplier, options.maxGradNorm, plan.samplingRate, plan.stepsPerEpoch, eps, plan.delta,
                          allowedSteps)
        if allowedSteps < plan.steps { line += " (the target epsilon stops the run before step \(allowedSteps + 1) of \(plan.steps))" }
        return line
    }

    /// Trains the next epoch (fewer steps if the target ε is reached within it); nil when the
    /// target allows no further step.
    public func epoch(_ model: any Model, images: UnsafeBufferPointer<Float>, labels: UnsafeBufferPointer<Int32>,
                      sgd: SGDConfig, progress: ((DPSGDProgress) -> Void)? = nil) throws -> DPSGDEpochReport? {
        let steps = min(plan.stepsPerEpoch, allowedSteps - stepsDone)
        guard steps > 0 else { return nil }
        let optimizer = self.optimizer ?? SGDOptimizer(parameterCount: model.parameterCount)
        self.optimizer = optimizer
        let r = try trainDPSGD(model, images: images, labels: labels, steps: steps, settings: options.settings(plan),
                               sgd: sgd, random: random, progress: progress, optimizer: optimizer)
        stepsDone += steps; epochsDone += 1
        return DPSGDEpochReport(epoch: epochsDone, steps: steps, examples: r.examples, epsilon: try plan.epsilon(afterSteps: stepsDone),
                                loss: r.meanLoss, clippedFraction: r.clippedFraction)
    }
}

/// A federated site training with DP-SGD on its own records: every fit is charged to the site's
/// on-disk ledger first (q = B/n_site per step, epochs·⌈n/B⌉ steps), refused when it would take
/// the site's ε past `options.targetEpsilon`, then trained; the fit metrics carry the site's ε.
public final class DPSGDSite: Sendable {
    /// The options every fit uses.
    public let options: DPSGDOptions
    let ledger: Mutex<DPSGDLedger>
    let random: SecureDPSGDRandom

    /// A site keeping its ledger in `ledgerDirectory`. Requires σ and a target ε (the budget).
    public init(options: DPSGDOptions, ledgerDirectory: String, randomness: DPRandomness = .system) throws {
        guard let z = options.noiseMultiplier else { throw PrivacyError.invalidNoiseMultiplier(.nan) }
        guard z.isFinite, z >= 0 else { throw PrivacyError.invalidNoiseMultiplier(z) }
        guard let budget = options.targetEpsilon, budget.isFinite, budget > 0 else {
            throw PrivacyError.invalidEpsilon(options.targetEpsilon ?? .nan)
        }
        self.options = options
        ledger = Mutex(try DPSGDLedger(directory: ledgerDirectory))
        random = SecureDPSGDRandom(randomness)
    }

    /// ε the site has spent so far at its δ.
    public func epsilon() throws -> Double { try ledger.withLock { try $0.epsilon(delta: options.delta) } }

    /// Charges and runs one fit's DP-SGD; returns the engine's result and the site's ε after it.
    public func fit(_ model: any Model, images: UnsafeBufferPointer<Float>, labels: UnsafeBufferPointer<Int32>,
                    epochs: Int, batchSize: Int, sgd: SGDConfig, round: Int,
                    adjustGradients: ((UnsafeMutableBufferPointer<Float>, UnsafeBufferPointer<Float>) -> Void)?) throws
        -> (result: DPSGDResult, epsilon: Double) {
        let plan = try options.plan(datasetSize: labels.count, batchSize: batchSize, epochs: epochs)
        let budget = options.targetEpsilon ?? .infinity
        let epsilon = try ledger.withLock { l in
            try l.charge(samplingRate: plan.samplingRate, noiseMultiplier: plan.noiseMultiplier, steps: plan.steps,
                         delta: plan.delta, budget: budget, label: "round \(round)")
        }
        let result = try trainDPSGD(model, images: images, labels: labels, steps: plan.steps, settings: options.settings(plan),
                                    sgd: sgd, random: random, adjustGradients: adjustGradients)
        return (result, epsilon)
    }
}
