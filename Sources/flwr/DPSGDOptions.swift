// The record-level DP-SGD flags of `flwr train`, `flwr client` and `flwr simulate` (each site
// clips every example's gradient and adds Gaussian noise; distinct from --dp-noise-multiplier,
// user-level DP-FedAvg on the server, and --dp-epsilon, data-level Laplace noise).
import ArgumentParser
import FlowerLearning

/// DP-SGD's flags; without --dp-sgd training is plain SGD.
struct DPSGDFlags: ParsableArguments {
    @Flag(help: ArgumentHelp(
        "Train with record-level DP-SGD: per-example clipping to --max-grad-norm, Gaussian noise σ·C, Poisson-sampled batches of expected size --batch-size.",
        discussion: "The guarantee is (ε, δ)-DP for any one training record of this site (README, \"Record-level DP-SGD\"). Plan ε first with `flwr privacy epsilon --mechanism dp-sgd`."))
    var dpSgd = false

    @Option(help: "DP-SGD noise multiplier σ: noise std σ·C per coordinate of the clipped sum (train: solved from --target-epsilon when omitted).")
    var noiseMultiplier: Double?

    @Option(help: "DP-SGD clip norm C of each example's gradient (L2 over all parameters).")
    var maxGradNorm: Double = 1.0

    @Option(help: "DP-SGD budget ε: train solves σ for it or stops before a step past it; a site refuses any round past it (required for client/simulate).")
    var targetEpsilon: Double?

    @Option(help: "δ of the record-level (ε, δ); below 1/records of the site.")
    var delta: Double = 1e-5

    @Option(help: "DP-SGD Poisson sampling rate q (default: --batch-size / dataset size).")
    var samplingRate: Double?

    @Option(help: "Largest chunk of a DP-SGD batch processed at once (bounds memory, not privacy).")
    var physicalBatch: Int = 256

    func validate() throws {
        let only = [("--noise-multiplier", noiseMultiplier != nil), ("--target-epsilon", targetEpsilon != nil),
                    ("--sampling-rate", samplingRate != nil)]
        if !dpSgd, let flag = only.first(where: \.1)?.0 { throw ValidationError("\(flag) needs --dp-sgd") }
        guard dpSgd else { return }
        if noiseMultiplier == nil && targetEpsilon == nil {
            throw ValidationError("--dp-sgd needs --noise-multiplier σ, or --target-epsilon to solve for it")
        }
        if let z = noiseMultiplier, !(z.isFinite && z >= 0) { throw ValidationError("--noise-multiplier must be a number >= 0, got \(z)") }
        guard maxGradNorm.isFinite, maxGradNorm > 0 else { throw ValidationError("--max-grad-norm must be a positive number, got \(maxGradNorm)") }
        if let e = targetEpsilon, !(e.isFinite && e > 0) { throw ValidationError("--target-epsilon must be a positive number, got \(e)") }
        guard delta > 0, delta < 1 else { throw ValidationError("--delta must be in (0, 1), got \(delta)") }
        if let q = samplingRate, !(q > 0 && q <= 1) { throw ValidationError("--sampling-rate must be in (0, 1], got \(q)") }
        guard physicalBatch >= 1, physicalBatch <= 1 << 20 else { throw ValidationError("--physical-batch must be in 1...1048576, got \(physicalBatch)") }
    }

    /// Federated sites need both σ and the budget up front.
    func validateForSites() throws {
        guard dpSgd else { return }
        if noiseMultiplier == nil || targetEpsilon == nil {
            throw ValidationError("a DP-SGD site needs --noise-multiplier σ and --target-epsilon (its budget over all rounds)")
        }
    }

    /// The options, or nil without --dp-sgd.
    var options: DPSGDOptions? {
        guard dpSgd else { return nil }
        return DPSGDOptions(maxGradNorm: maxGradNorm, noiseMultiplier: noiseMultiplier, targetEpsilon: targetEpsilon,
                            delta: delta, samplingRate: samplingRate, physicalBatch: physicalBatch)
    }
}
