// `flwr privacy epsilon`: plan a user-level DP budget before a run (Opacus's and TF Privacy's
// calculators, over this binary's RDP accountant: Sources/Privacy).
import ArgumentParser
import FlowerRuntime
import Privacy

/// `flwr privacy`: privacy accounting tools.
struct PrivacyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "privacy",
        abstract: "Privacy accounting for DP-FedAvg and DP-SGD: ε of a planned run, or the noise a target ε needs.",
        subcommands: [EpsilonCommand.self])
}

/// `flwr privacy epsilon`: ε of T rounds of the subsampled Gaussian mechanism, or z for a target ε.
struct EpsilonCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "epsilon",
        abstract: "Print the (ε, δ) of T DP-FedAvg rounds, or with --target-epsilon the noise multiplier that reaches it.",
        discussion: """
            RDP accountant of the Poisson-subsampled Gaussian mechanism (Mironov, Talwar, Zhang 2019) \
            at dp-accounting's orders 1.1 … 1024, composed over the rounds, converted to (ε, δ) with \
            the bound of Canonne, Kamath, Steinke 2020 (Prop. 12), as Google's dp-accounting does. \
            The sampling rate is the chance that one client takes part in a round (--fraction-fit of \
            `flwr simulate`/`flwr server` with --dp-noise-multiplier, which samples each client \
            independently with that probability). The guarantee is user-level: it covers everything \
            one client contributes.
            """)

    @Option(help: "dp-fedavg (user-level, per round) or dp-sgd (record-level, per step of one site's training).") var mechanism: EpsilonMechanism = .dpFedAvg
    @Option(help: "Noise multiplier z: noise std divided by the clipping norm (needed unless --target-epsilon).") var noiseMultiplier: Double?
    @Option(help: "Probability q that a client takes part in a round (--fraction-fit); dp-sgd: that a record is in a step's batch (instead of --batch-size).") var samplingRate: Double?
    @Option(help: "Federated rounds T (dp-fedavg).") var rounds: Int?
    @Option(help: "dp-sgd: records n of the dataset (a site's partition).") var datasetSize: Int?
    @Option(help: "dp-sgd: expected batch size B (q = B/n, ⌈n/B⌉ steps per epoch).") var batchSize: Int?
    @Option(help: "dp-sgd: epochs (for a site: local epochs times rounds).") var epochs: Int?
    @Option(help: "δ of the (ε, δ) guarantee; below 1/number of clients.") var delta: Double = 1e-5
    @Option(help: "Solve for the smallest noise multiplier whose T rounds stay within this ε.") var targetEpsilon: Double?
    @Flag(help: "Print one JSON line: {\"epsilon\": …, \"delta\": …, \"order\": …} (plus \"noise_multiplier\" with --target-epsilon).") var json = false

    func validate() throws { try validating { try question.validate() } }

    func run() throws { for line in try validating({ try question.report(json: json) }) { print(line) } }

    /// The library's form of these flags.
    var question: EpsilonQuestion {
        EpsilonQuestion(mechanism: mechanism, noiseMultiplier: noiseMultiplier, targetEpsilon: targetEpsilon,
                        samplingRate: samplingRate, rounds: rounds, datasetSize: datasetSize, batchSize: batchSize,
                        epochs: epochs, delta: delta)
    }
}

extension EpsilonMechanism: ExpressibleByArgument {}
