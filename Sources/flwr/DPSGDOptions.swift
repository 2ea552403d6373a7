// The record-level DP-SGD flags of `flwr train`, `flwr client` and `flwr simulate` (each site
// clips every example's gradient and adds Gaussian noise; distinct from --dp-noise-multiplier,
// user-level DP-FedAvg on the server, and --dp-epsilon, data-level Laplace noise).
import ArgumentParser
import FlowerLearning
import FlowerRuntime

/// DP-SGD's flags; without --dp-sgd training is plain SGD.
struct DPSGDFlags: ParsableArguments {
    @Flag(help: ArgumentHelp("Train with record-level DP-SGD: per-example clipping to --max-grad-norm, Gaussian noise σ·C, Poisson-sampled batches of expected size --batch-size.", discussion: "The guarantee is (ε, δ)-DP for any one training record of this site (README, \"Record-level DP-SGD\"). Plan ε first with `flwr privacy epsilon --mechanism dp-sgd`.")) var dpSgd = false
    @Option(help: "DP-SGD noise multiplier σ: noise std σ·C per coordinate of the clipped sum (train: solved from --target-epsilon when omitted).") var noiseMultiplier: Double?
    @Option(help: "DP-SGD clip norm C of each example's gradient (L2 over all parameters).") var maxGradNorm: Double = 1.0
    @Option(help: "DP-SGD budget ε: train solves σ for it or stops before a step past it; a site refuses any round past it (required for client/simulate).") var targetEpsilon: Double?
    @Option(help: "δ of the record-level (ε, δ); below 1/records of the site.") var delta: Double = 1e-5
    @Option(help: "DP-SGD Poisson sampling rate q (default: --batch-size / dataset size).") var samplingRate: Double?
    @Option(help: "Largest chunk of a DP-SGD batch processed at once (bounds memory, not privacy).") var physicalBatch: Int = 256

    func validate() throws { _ = try options() }

    /// The options, or nil without --dp-sgd.
    func options() throws -> DPSGDOptions? {
        try validating {
            try DPSGDOptions(enabled: dpSgd, maxGradNorm: maxGradNorm, noiseMultiplier: noiseMultiplier, targetEpsilon: targetEpsilon,
                             delta: delta, samplingRate: samplingRate, physicalBatch: physicalBatch)
        }
    }
}
