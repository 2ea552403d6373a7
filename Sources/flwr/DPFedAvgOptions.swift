// The DP-FedAvg flags `flwr server` and `flwr simulate` share (user-level DP of the released
// models; distinct from PrivacyOptions' --dp-epsilon/--dp-unit, the data-level Laplace release).
import ArgumentParser
import FlowerRuntime
import Privacy

/// DP-FedAvg's flags; all optional: without --dp-noise-multiplier the strategy is used as is.
struct DPFedAvgOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Turn on DP-FedAvg (user-level differential privacy) with this noise multiplier z: Gaussian noise of std z·C on the sum of the clipped updates.", discussion: "Clients are then sampled independently with probability --fraction-fit each round (Poisson sampling, which the accountant assumes), every update is clipped to norm C and weighs the same, and ε after each round is logged and written to history.jsonl. Plan ε first with `flwr privacy epsilon`.")) var dpNoiseMultiplier: Double?
    @Option(help: "Clipping norm C of each client's update ‖wᵢ − w‖₂ (with --dp-target-quantile: its initial value, default 0.1 as Andrew et al. recommend).") var dpClip: Double?
    @Option(help: "Adaptive clipping (Andrew et al. 2021): the fraction of updates C should leave unclipped, e.g. 0.5 for the median norm.") var dpTargetQuantile: Double?
    @Option(help: "Learning rate η of adaptive clipping: C ← C·exp(−η(fraction within C − quantile)).") var dpClipLr: Double = 0.2
    @Option(help: "Std σ_b of the noise on adaptive clipping's count of unclipped updates (default: max(expected clients per round / 20, z)).") var dpClippedCountStddev: Double?
    @Option(help: "δ of the reported user-level (ε, δ); keep it below 1/number of clients.") var dpDelta: Double = 1e-5
    @Option(help: "Stop before a round that would bring ε above this; the server ends with the last model saved.") var dpTargetEpsilon: Double?

    func validate() throws { _ = try config(samplingRate: 1) }

    /// The DP-FedAvg configuration for sampling rate `q`, or nil when DP-FedAvg is off.
    func config(samplingRate q: Double) throws -> DPFedAvgConfig? {
        try validating {
            try DPFedAvgConfig(noiseMultiplier: dpNoiseMultiplier, clip: dpClip, targetQuantile: dpTargetQuantile, clipLearningRate: dpClipLr,
                               clippedCountStddev: dpClippedCountStddev, delta: dpDelta, targetEpsilon: dpTargetEpsilon, samplingRate: q)
        }
    }
}
