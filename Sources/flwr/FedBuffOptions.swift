import ArgumentParser
import FlowerCore
import FlowerRuntime

/// `--mode sync|async` and FedBuff's settings, shared by `flwr server` (real clock) and
/// `flwr simulate` (virtual clock). FedBuff's server step η is `--server-learning-rate`.
struct FedBuffOptions: ParsableArguments {
    @Option(help: ArgumentHelp("sync: rounds, each waiting for its sampled clients; async: FedBuff (Nguyen et al., AISTATS 2022), --concurrency clients always training on the version they were sent and a server update every --buffer-size results, w ← w + η Σ nᵢ(1+τᵢ)^−a (wᵢ − w_sentᵢ) / Σ nᵢ (nᵢ: each result's examples, τᵢ: versions behind, η: --server-learning-rate, default 1); --rounds then counts server updates. async takes --strategy fedavg or fedprox; flwr simulate runs it on the virtual clock (virtual clients), flwr server on the real one.", valueName: "sync|async")) var mode: SimulationMode = .sync
    @Option(help: "FedBuff: clients training at all times (C).") var concurrency: Int = 10
    @Option(help: "FedBuff: results buffered before each server update (K, at most --concurrency).") var bufferSize: Int = 10
    @Option(help: "FedBuff: exponent a of the staleness discount (1 + τ)^−a of an update τ versions old (0.5: the paper's 1/√(1+τ); 0: none).") var stalenessExponent: Double = 0.5
    @Option(help: "FedBuff: discard results trained on a version more than this many updates old (default: keep all).") var maxStaleness: Int?
    @Option(help: "FedBuff: evaluate centrally after every E-th server update (and the last).") var evalEvery: Int = 1

    /// FedBuff's settings, with η from `--server-learning-rate` (default 1).
    func config(serverLearningRate: Double?) -> FedBuffConfig {
        FedBuffConfig(concurrency: concurrency, bufferSize: bufferSize, stalenessExponent: stalenessExponent,
                      maxStaleness: maxStaleness, serverLearningRate: serverLearningRate ?? 1, evalEvery: evalEvery)
    }
}

extension SimulationMode: ExpressibleByArgument {
    public init?(argument: String) { self.init(rawValue: argument) }
}
