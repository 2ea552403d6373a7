import ArgumentParser
import Attacks
import FlowerCore
import FlowerRuntime

/// Strategy and server-side update checks, shared by `flwr server` and `flwr simulate`
/// (hyperparameters named as in Flower).
struct StrategyOptions: ParsableArguments {
    @Option(help: ArgumentHelp(StrategyCatalog.help)) var strategy: String = "fedavg"
    @Option(help: "FedAvgM/FedOpt: server learning rate η (Flower's server_learning_rate / eta; default per strategy); --mode async: FedBuff's server step η (default 1).") var serverLearningRate: Double?
    @Option(help: "FedAvgM: server momentum μ (default 0); FedOpt: alias of --beta-1.") var serverMomentum: Double?
    @Option(name: .customLong("beta-1"), help: "FedOpt: first-moment decay β₁ (default 0.9; fedadagrad 0).") var beta1: Double?
    @Option(name: .customLong("beta-2"), help: "FedAdam/FedYogi: second-moment decay β₂ (default 0.99).") var beta2: Double?
    @Option(help: "FedOpt: adaptivity τ (default 1e-9; fedyogi 1e-3).") var tau: Double?
    @Option(help: "FedProx: proximal coefficient μ, sent to clients as proximal_mu (required for fedprox).") var proximalMu: Double?
    @Option(help: "FedTrimmedAvg: fraction β of updates cut from each end per coordinate (default 0.2).") var beta: Double?
    @Option(help: "Krum/MultiKrum/Bulyan: number f of malicious clients tolerated.") var numMaliciousClients: Int = 0
    @Option(help: "MultiKrum: number of best-scored updates averaged (required for multikrum).") var numClientsToKeep: Int?
    @Option(help: "Largest num_examples a client may claim; a larger claim is a rejected update (bounds every sum).") var maxExamples: Int = AnswerChecks.defaultMaxExamples
    @Option(help: "Server-side clipping for any strategy: scale each update so that ‖wᵢ − w‖₂ ≤ C before aggregation.") var clipNorm: Double?
    @Flag(help: ArgumentHelp("Secure aggregation (SecAgg+, Bell et al. 2020): the server learns only the weighted sum of the clients' updates, never one client's.", discussion: "Works with fedavg, fedavgm, fedprox and the FedOpt family (they only need the sum); robust strategies, --clip-norm and DP-FedAvg are refused. Each update (local − global model) is clipped to ±--secagg-clipping-range and quantised; up to num_shares − reconstruction_threshold neighbours of a client may drop out and the round still completes.")) var secagg = false
    @Option(help: "SecAgg+: neighbours k of each client (Flower's num_shares; default 2·⌈log₂ n⌉, even; n − 1 or more is original SecAgg's complete graph).") var secaggNumShares: Int?
    @Option(help: "SecAgg+: shares t needed to rebuild a secret (Flower's reconstruction_threshold; default ⌊k/2⌋ + 1; must exceed k/2).") var secaggReconstructionThreshold: Int?
    @Option(help: "SecAgg+: each value of an update is clipped to [−R, R] before quantisation (Flower's clipping_range).") var secaggClippingRange: Double = 8
    @Option(help: "SecAgg+: quantisation levels Q over [−R, R] (Flower's quantization_range; default the largest power of two that cannot overflow 2^32 for the sampled clients).") var secaggQuantizationRange: UInt64?
    @Option(help: "SecAgg+: a client's weight is min(num_examples, W) (Flower's max_weight).") var secaggMaxWeight: UInt64 = 1000

    func validate() throws { try validating { try settings().validate() } }

    /// The library's form of these flags.
    func settings() throws -> StrategySettings {
        var s = StrategySettings(name: strategy)
        s.serverLearningRate = serverLearningRate; s.serverMomentum = serverMomentum
        s.beta1 = beta1; s.beta2 = beta2; s.tau = tau; s.proximalMu = proximalMu; s.beta = beta
        s.numMaliciousClients = numMaliciousClients; s.numClientsToKeep = numClientsToKeep
        s.maxExamples = maxExamples; s.clipNorm = clipNorm
        s.secureAggregation = try validating {
            try SecAggConfig(enabled: secagg, numShares: secaggNumShares, reconstructionThreshold: secaggReconstructionThreshold,
                             clippingRange: secaggClippingRange, quantizationRange: secaggQuantizationRange, maxWeight: secaggMaxWeight)
        }
        return s
    }
}

/// Attack simulation flags of `flwr client` (and, with --malicious, `flwr simulate`).
struct AttackOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Behave as a malicious client (for robustness experiments): \(AttackKind.allCases.map(\.rawValue).joined(separator: ", ")). sign-flip sends w − s·(wᵢ − w), scale w + s·(wᵢ − w), gaussian a random update of s × the honest norm, label-flip trains on labels y → K−1−y, nan sends one NaN, claim-examples claims --claimed-examples.")) var attack: String?
    @Option(help: "The attack scale s.") var attackScale: Double = 1
    @Option(help: "The num_examples a claim-examples attacker reports.") var claimedExamples: Int = 1_000_000_000

    func validate() throws { _ = try settings(seed: 0) }

    /// The settings, or nil for an honest client.
    func settings(seed: UInt64) throws -> AttackSettings? {
        try validating { try AttackSettings(attack: attack, scale: attackScale, claimedExamples: claimedExamples, seed: seed) }
    }
}
