import ArgumentParser
import Attacks
import CIFARLoader
import FedAvg
import FlowerCore
import Strategies

/// One `--strategy` choice: its name, a line of help, whether it buffers the round's updates, and
/// how to build it over FedAvg's sampling from the flags.
struct StrategyEntry: Sendable {
    let name: String
    let summary: String
    /// True for order-statistic rules that hold every update of the round in memory.
    let buffers: Bool
    let make: @Sendable (FedAvg, StrategyOptions) -> any Strategy
}

/// The strategies `--strategy` accepts. A new strategy is one file in Sources/Strategies plus
/// one line here.
let strategyCatalog: [StrategyEntry] = [
    StrategyEntry(name: "fedavg", summary: "weighted average (McMahan et al. 2017)", buffers: false) { b, _ in b },
    StrategyEntry(name: "fedavgm", summary: "FedAvg + server momentum (--server-learning-rate, --server-momentum)", buffers: false) { b, o in
        FedAvgM(base: b, serverLearningRate: o.serverLearningRate ?? 1, serverMomentum: o.serverMomentum ?? 0) },
    StrategyEntry(name: "fedprox", summary: "FedAvg + client proximal term (--proximal-mu, sent as proximal_mu)", buffers: false) { b, o in
        FedProx(base: b, proximalMu: o.proximalMu ?? 0) },
    StrategyEntry(name: "fedadam", summary: "FedOpt with Adam (--server-learning-rate 0.1, --beta-1 0.9, --beta-2 0.99, --tau 1e-9)", buffers: false) { b, o in
        FedAdam(base: b, settings: o.fedOpt(FedAdam.defaults)) },
    StrategyEntry(name: "fedyogi", summary: "FedOpt with Yogi (--server-learning-rate 0.01, --beta-1 0.9, --beta-2 0.99, --tau 1e-3)", buffers: false) { b, o in
        FedYogi(base: b, settings: o.fedOpt(FedYogi.defaults)) },
    StrategyEntry(name: "fedadagrad", summary: "FedOpt with Adagrad (--server-learning-rate 0.1, --beta-1 0, --tau 1e-9)", buffers: false) { b, o in
        FedAdagrad(base: b, settings: o.fedOpt(FedAdagrad.defaults)) },
    StrategyEntry(name: "fedmedian", summary: "coordinate-wise median", buffers: true) { b, _ in FedMedian(base: b) },
    StrategyEntry(name: "fedtrimmedavg", summary: "coordinate-wise trimmed mean (--beta 0.2 cut from each end)", buffers: true) { b, o in
        FedTrimmedAvg(base: b, beta: o.beta ?? 0.2) },
    StrategyEntry(name: "krum", summary: "the one update closest to its n-f-2 neighbours (--num-malicious-clients f)", buffers: true) { b, o in
        Krum(base: b, numMaliciousClients: o.numMaliciousClients) },
    StrategyEntry(name: "multikrum", summary: "average of the --num-clients-to-keep best Krum scores", buffers: true) { b, o in
        MultiKrum(base: b, numMaliciousClients: o.numMaliciousClients, numClientsToKeep: o.numClientsToKeep ?? 1) },
    StrategyEntry(name: "bulyan", summary: "Krum selection then trimmed median (needs clients >= 4f+3)", buffers: true) { b, o in
        Bulyan(base: b, numMaliciousClients: o.numMaliciousClients) },
]

/// `--strategy`'s help, listing the catalog.
let strategyHelp: String = {
    let list = strategyCatalog.map { "\($0.name)\($0.buffers ? "*" : ""): \($0.summary)" }.joined(separator: "; ")
    return "Aggregation strategy, as Flower names it: \(list). * = order-statistic: buffers every update of the round (memory: clients × model); the others stream in O(model)."
}()

/// Strategy and server-side update checks, shared by `flwr server` and `flwr simulate`
/// (hyperparameters named as in Flower).
struct StrategyOptions: ParsableArguments {
    @Option(help: ArgumentHelp(strategyHelp))
    var strategy: String = "fedavg"

    @Option(help: "FedAvgM/FedOpt: server learning rate η (Flower's server_learning_rate / eta; default per strategy).")
    var serverLearningRate: Double?

    @Option(help: "FedAvgM: server momentum μ (default 0); FedOpt: alias of --beta-1.")
    var serverMomentum: Double?

    @Option(name: .customLong("beta-1"), help: "FedOpt: first-moment decay β₁ (default 0.9; fedadagrad 0).")
    var beta1: Double?

    @Option(name: .customLong("beta-2"), help: "FedAdam/FedYogi: second-moment decay β₂ (default 0.99).")
    var beta2: Double?

    @Option(help: "FedOpt: adaptivity τ (default 1e-9; fedyogi 1e-3).")
    var tau: Double?

    @Option(help: "FedProx: proximal coefficient μ, sent to clients as proximal_mu (required for fedprox).")
    var proximalMu: Double?

    @Option(help: "FedTrimmedAvg: fraction β of updates cut from each end per coordinate (default 0.2).")
    var beta: Double?

    @Option(help: "Krum/MultiKrum/Bulyan: number f of malicious clients tolerated.")
    var numMaliciousClients: Int = 0

    @Option(help: "MultiKrum: number of best-scored updates averaged (required for multikrum).")
    var numClientsToKeep: Int?

    @Option(help: "Largest num_examples a client may claim; a larger claim is a rejected update (bounds every sum).")
    var maxExamples: Int = AnswerChecks.defaultMaxExamples

    @Option(help: "Server-side clipping for any strategy: scale each update so that ‖wᵢ − w‖₂ ≤ C before aggregation.")
    var clipNorm: Double?

    func validate() throws {
        guard let entry = strategyCatalog.first(where: { $0.name == strategy }) else {
            throw ValidationError("unknown --strategy \(strategy); choose one of \(strategyCatalog.map(\.name).joined(separator: ", "))")
        }
        if entry.name == "fedprox" {
            guard let mu = proximalMu else { throw ValidationError("--strategy fedprox needs --proximal-mu (e.g. 0.01)") }
            guard mu >= 0 && mu.isFinite else { throw ValidationError("--proximal-mu must be 0 or more, got \(mu)") }
        }
        if entry.name == "multikrum" {
            guard let m = numClientsToKeep, m >= 1 else {
                throw ValidationError("--strategy multikrum needs --num-clients-to-keep of at least 1")
            }
        }
        if let x = serverLearningRate, !(x > 0 && x.isFinite) {
            throw ValidationError("--server-learning-rate must be positive, got \(x)")
        }
        for (flag, value) in [("--server-momentum", serverMomentum), ("--beta-1", beta1), ("--beta-2", beta2)] {
            if let v = value, !(v >= 0 && v < 1) { throw ValidationError("\(flag) must be in [0, 1), got \(v)") }
        }
        if let t = tau, !(t > 0 && t.isFinite) { throw ValidationError("--tau must be positive, got \(t)") }
        if let b = beta, !(b >= 0 && b < 0.5) { throw ValidationError("--beta must be in [0, 0.5), got \(b)") }
        guard numMaliciousClients >= 0 else {
            throw ValidationError("--num-malicious-clients must be 0 or more, got \(numMaliciousClients)")
        }
        guard maxExamples >= 1 else { throw ValidationError("--max-examples must be at least 1, got \(maxExamples)") }
        if let c = clipNorm, !(c > 0 && c.isFinite) { throw ValidationError("--clip-norm must be positive, got \(c)") }
    }

    /// The chosen strategy over FedAvg's sampling `base`.
    func make(base: FedAvg) -> any Strategy {
        (strategyCatalog.first { $0.name == strategy } ?? strategyCatalog[0]).make(base, self)
    }

    /// FedOpt settings: `defaults` overridden by the flags (--server-momentum stands for --beta-1).
    func fedOpt(_ defaults: FedOptSettings) -> FedOptSettings {
        FedOptSettings(eta: serverLearningRate ?? defaults.eta, beta1: beta1 ?? serverMomentum ?? defaults.beta1,
                       beta2: beta2 ?? defaults.beta2, tau: tau ?? defaults.tau)
    }

    /// `options` with this group's answer checks (--max-examples, --clip-norm).
    func apply(to options: ServerOptions) -> ServerOptions {
        var o = options
        o.maxExamples = maxExamples
        o.clipNorm = clipNorm
        return o
    }
}

/// Attack simulation flags of `flwr client` (and, with --malicious, `flwr simulate`).
struct AttackOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Behave as a malicious client (for robustness experiments): \(AttackKind.allCases.map(\.rawValue).joined(separator: ", ")). sign-flip sends w − s·(wᵢ − w), scale w + s·(wᵢ − w), gaussian a random update of s × the honest norm, label-flip trains on labels y → K−1−y, nan sends one NaN, claim-examples claims --claimed-examples."))
    var attack: String?

    @Option(help: "The attack scale s.")
    var attackScale: Double = 1

    @Option(help: "The num_examples a claim-examples attacker reports.")
    var claimedExamples: Int = 1_000_000_000

    func validate() throws {
        if let a = attack, AttackKind(rawValue: a) == nil {
            throw ValidationError("unknown --attack \(a); choose one of \(AttackKind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard attackScale.isFinite && attackScale >= 0 else {
            throw ValidationError("--attack-scale must be a finite number ≥ 0, got \(attackScale)")
        }
        guard claimedExamples >= 1 else { throw ValidationError("--claimed-examples must be at least 1, got \(claimedExamples)") }
    }

    /// The settings, or nil for an honest client.
    func settings(seed: UInt64) -> AttackSettings? {
        attack.flatMap(AttackKind.init(rawValue:)).map {
            AttackSettings(kind: $0, scale: attackScale, claimedExamples: claimedExamples, seed: seed)
        }
    }

    /// `client` as is, or wrapped as a malicious client of `partition`.
    func wrap(_ client: any Client, partition: Int, seed: UInt64) -> any Client {
        guard let s = settings(seed: seed) else { return client }
        return MaliciousClient(wrapping: client, settings: s, partition: partition)
    }

    /// `data` with flipped labels under `label-flip`, else unchanged.
    func trainingData(_ data: Dataset) -> Dataset {
        guard settings(seed: 0)?.kind.changesData == true else { return data }
        var d = data
        d.labels = flipLabels(d.labels, classes: d.classes)
        return d
    }
}

/// `flwr simulate`'s attack flags: the first --malicious partitions run `AttackOptions`' attack.
struct SimulationAttackOptions: ParsableArguments {
    @Option(help: "Number M of malicious clients: partitions 0..<M run --attack (recorded per round in history.jsonl as \"malicious\").")
    var malicious: Int = 0

    @OptionGroup var attack: AttackOptions

    func validate() throws {
        guard malicious >= 0 else { throw ValidationError("--malicious must be 0 or more, got \(malicious)") }
        if malicious > 0 && attack.attack == nil { throw ValidationError("--malicious \(malicious) needs --attack KIND") }
    }

    /// Whether partition `i` is malicious.
    func isMalicious(_ i: Int) -> Bool { i < malicious }
}
