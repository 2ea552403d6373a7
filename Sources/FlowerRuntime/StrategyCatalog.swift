// The strategies a server can run, by the names Flower gives them, and FedAvg's sampling under
// each. A new strategy is one file in Sources/Strategies plus one entry here.
import FedAvg
import FlowerCore
import Logging
import Privacy
import Strategies

/// The strategy choice and its hyperparameters (named as in Flower), plus the server-side update
/// checks every strategy gets.
public struct StrategySettings: Sendable, Equatable {
    public var name = "fedavg"
    public var serverLearningRate: Double?
    public var serverMomentum: Double?
    public var beta1: Double?
    public var beta2: Double?
    public var tau: Double?
    public var proximalMu: Double?
    public var beta: Double?
    public var numMaliciousClients = 0
    public var numClientsToKeep: Int?
    /// Largest num_examples a client may claim.
    public var maxExamples = AnswerChecks.defaultMaxExamples
    /// Server-side clipping of each update's norm, for any strategy.
    public var clipNorm: Double?
    /// Secure aggregation (SecAgg+, `--secagg`): the server learns only the sum of the updates.
    public var secureAggregation: SecAggConfig?

    public init(name: String = "fedavg") { self.name = name }

    /// Throws a `StrategyError` naming the flag that is wrong.
    public func validate() throws {
        guard let entry = StrategyCatalog.entry(named: name) else {
            throw StrategyError("unknown --strategy \(name); choose one of \(StrategyCatalog.names.joined(separator: ", "))")
        }
        if entry.name == "fedprox" {
            guard let mu = proximalMu else { throw StrategyError("--strategy fedprox needs --proximal-mu (e.g. 0.01)") }
            guard mu >= 0 && mu.isFinite else { throw StrategyError("--proximal-mu must be 0 or more, got \(mu)") }
        }
        if entry.name == "multikrum" {
            guard let m = numClientsToKeep, m >= 1 else {
                throw StrategyError("--strategy multikrum needs --num-clients-to-keep of at least 1")
            }
        }
        if let x = serverLearningRate, !(x > 0 && x.isFinite) {
            throw StrategyError("--server-learning-rate must be positive, got \(x)")
        }
        for (flag, value) in [("--server-momentum", serverMomentum), ("--beta-1", beta1), ("--beta-2", beta2)] {
            if let v = value, !(v >= 0 && v < 1) { throw StrategyError("\(flag) must be in [0, 1), got \(v)") }
        }
        if let t = tau, !(t > 0 && t.isFinite) { throw StrategyError("--tau must be positive, got \(t)") }
        if let b = beta, !(b >= 0 && b < 0.5) { throw StrategyError("--beta must be in [0, 0.5), got \(b)") }
        guard numMaliciousClients >= 0 else {
            throw StrategyError("--num-malicious-clients must be 0 or more, got \(numMaliciousClients)")
        }
        guard maxExamples >= 1 else { throw StrategyError("--max-examples must be at least 1, got \(maxExamples)") }
        if let c = clipNorm, !(c > 0 && c.isFinite) { throw StrategyError("--clip-norm must be positive, got \(c)") }
        if let secagg = secureAggregation {
            if let entry = StrategyCatalog.entry(named: name), entry.buffers {
                throw StrategyError("--strategy \(entry.name) ranks or compares each client's own update, which --secagg hides from the server; with --secagg use fedavg, fedavgm, fedprox, fedadam, fedyogi or fedadagrad (they only need the sum)")
            }
            if clipNorm != nil {
                throw StrategyError("--clip-norm clips each client's own update on the server, which --secagg hides from it; drop --clip-norm (--secagg-clipping-range bounds every value of an update on the client)")
            }
            // The rules that do not depend on the number of sampled clients, checked now rather than at round 1.
            if let k = secagg.numShares, k < 1 { throw StrategyError("--secagg-num-shares must be at least 1, got \(k)") }
            if let t = secagg.reconstructionThreshold, t < 1 {
                throw StrategyError("--secagg-reconstruction-threshold must be at least 1, got \(t)")
            }
            if let k = secagg.numShares, let t = secagg.reconstructionThreshold, !(2 * t > k && t <= k) {
                throw StrategyError("--secagg-reconstruction-threshold \(t) must be more than half of --secagg-num-shares \(k) and at most it")
            }
            let r = secagg.clippingRange
            guard r.isFinite, r > 0, r <= SecAggLimits.maxClippingRange else {
                throw StrategyError("--secagg-clipping-range must be a number in (0, 1e9], got \(r)")
            }
            if let q = secagg.quantizationRange, q < 2 { throw StrategyError("--secagg-quantization-range must be at least 2, got \(q)") }
            guard secagg.maxWeight >= 1 else { throw StrategyError("--secagg-max-weight must be at least 1, got \(secagg.maxWeight)") }
        }
    }

    /// FedOpt settings: `defaults` overridden by these (server momentum stands for β₁).
    public func fedOpt(_ defaults: FedOptSettings) -> FedOptSettings {
        FedOptSettings(eta: serverLearningRate ?? defaults.eta, beta1: beta1 ?? serverMomentum ?? defaults.beta1,
                       beta2: beta2 ?? defaults.beta2, tau: tau ?? defaults.tau)
    }

    /// `options` with these answer checks (max examples, clip norm).
    public func apply(to options: ServerOptions) -> ServerOptions {
        var o = options
        o.maxExamples = maxExamples
        o.clipNorm = clipNorm
        o.secureAggregation = secureAggregation
        return o
    }
}

/// A strategy setting that cannot work; the description names the flag.
public struct StrategyError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// One strategy: its name, a line of help, whether it buffers the round's updates, and how to
/// build it over FedAvg's sampling.
public struct StrategyEntry: Sendable {
    public let name: String
    public let summary: String
    /// True for order-statistic rules that hold every update of the round in memory.
    public let buffers: Bool
    let make: @Sendable (FedAvg, StrategySettings) -> any Strategy
}

/// The strategies `--strategy` accepts.
public enum StrategyCatalog {
    public static let entries: [StrategyEntry] = [
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

    /// Every name, in catalog order.
    public static var names: [String] { entries.map(\.name) }

    /// The entry called `name`, if any.
    public static func entry(named name: String) -> StrategyEntry? { entries.first { $0.name == name } }

    /// `--strategy`'s help, listing the catalog.
    public static let help: String = {
        let list = entries.map { "\($0.name)\($0.buffers ? "*" : ""): \($0.summary)" }.joined(separator: "; ")
        return "Aggregation strategy, as Flower names it: \(list). * = order-statistic: buffers every update of the round (memory: clients × model); the others stream in O(model)."
    }()

    /// The strategy of `settings` over FedAvg's sampling `base` (FedAvg itself for an unknown name,
    /// which `validate()` refuses first).
    public static func make(_ settings: StrategySettings, base: FedAvg) -> any Strategy {
        (entry(named: settings.name) ?? entries[0]).make(base, settings)
    }

    /// `strategy` wrapped in DP-FedAvg when `dp` is given (noise and sampling from the system's
    /// secure generator), else `strategy` itself.
    public static func withDP(_ strategy: any Strategy, _ dp: DPFedAvgConfig?, logger: Logger) throws -> any Strategy {
        guard let config = dp else { return strategy }
        do {
            let wrapped = try DPFedAvg(wrapping: strategy, config: config)
            logger.info("DP-FedAvg: z = \(config.noiseMultiplier), \(config.clipping), Poisson sampling q = \(config.samplingRate), δ = \(config.delta)\(config.targetEpsilon.map { ", target ε = \($0)" } ?? "")")
            return wrapped
        } catch {
            throw StrategyError("\(error)")
        }
    }
}

/// Central evaluation: (round, parameters) → (loss, metrics with "accuracy").
public typealias CentralEvaluateFn = @Sendable (Int, Parameters) async throws -> (loss: Double, metrics: Metrics)?

/// Round-loop settings of a server: sampling, deadlines, retries.
public struct FederationSettings: Sendable {
    public var rounds = 10
    public var fractionFit = 1.0
    /// Fewest clients sampled per round and fewest results accepted (nil: min(2, min clients)).
    public var minFitClients: Int?
    public var roundTimeout: Duration = .seconds(600)
    public var acceptFailures = true
    public var roundAttempts = 1
    public var seed: UInt64 = 42

    public init() {}

    /// FedAvg configured from these settings for `minClients` connected clients.
    public func fedAvg(minClients: Int, initialParameters: Parameters?, fitConfig: Config,
                       evaluateFn: CentralEvaluateFn?) -> FedAvg {
        makeFedAvg(fractionFit: fractionFit, minFitClients: minFitClients, acceptFailures: acceptFailures, seed: seed,
                   minClients: minClients, initialParameters: initialParameters, fitConfig: fitConfig,
                   evaluateFn: evaluateFn)
    }
}

/// FedAvg over `minClients` clients: federated evaluation on the clients only when the server
/// has no central evaluation; `minFitClients` defaults to min(2, minClients).
public func makeFedAvg(fractionFit: Double, minFitClients: Int?, acceptFailures: Bool, seed: UInt64, minClients: Int,
                       initialParameters: Parameters?, fitConfig: Config, evaluateFn: CentralEvaluateFn?) -> FedAvg {
    let minFit = minFitClients ?? min(2, minClients)
    return FedAvg(fractionFit: fractionFit, fractionEvaluate: evaluateFn == nil ? 1 : 0,
                  minFitClients: minFit, minEvaluateClients: evaluateFn == nil ? minFit : 0,
                  minAvailableClients: minClients, acceptFailures: acceptFailures, seed: seed,
                  initialParameters: initialParameters, onFitConfig: { _ in fitConfig },
                  evaluateFn: evaluateFn)
}
