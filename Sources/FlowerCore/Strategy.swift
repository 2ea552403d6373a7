/// Why one client's contribution to a round was lost. Failures are data: the round loop collects
/// them next to the results and the strategy decides what they mean (Flower's `failures`).
public struct ClientFailure: Error, Sendable, Equatable, CustomStringConvertible {
    /// What went wrong.
    public enum Kind: Sendable, Equatable {
        /// The call threw: disconnect, malformed answer, transport error.
        case error
        /// No answer before the round deadline.
        case timeout
        /// The client answered with a non-ok status.
        case status
        /// The answer arrived but the strategy refused it (NaN/Inf, wrong names or shapes, ...).
        case rejected
    }

    /// Identity of the client.
    public var clientID: String
    /// The failure's category.
    public var kind: Kind
    /// Human-readable reason, logged as is.
    public var reason: String

    /// A failure of `clientID` for `reason`.
    public init(clientID: String, kind: Kind, reason: String) {
        self.clientID = clientID
        self.kind = kind
        self.reason = reason
    }

    public var description: String { "client \(clientID): \(reason)" }
}

/// A strategy's refusal to produce a model for a round (too few results, failures not accepted).
public struct StrategyRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    /// Why the round cannot be aggregated, with what to change.
    public var reason: String
    /// A refusal for `reason`.
    public init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}

/// Server-side optimiser state a strategy carries from one round to the next (FedOpt's moments,
/// FedAvgM's velocity): named float buffers laid out like the model, plus named scalars. It is
/// part of the checkpoint, so a resumed run continues with exactly the state it stopped with.
/// Empty before the first round; a strategy treats a missing buffer as zeros.
public struct StrategyState: Sendable, Equatable, Codable {
    /// Model-sized buffers by name (e.g. `m`, `v`, `velocity`).
    public var tensors: [String: [Float]]
    /// Scalars by name (e.g. a step count, an adaptive clipping bound).
    public var scalars: [String: Double]

    /// A state holding `tensors` and `scalars` (default: empty).
    public init(tensors: [String: [Float]] = [:], scalars: [String: Double] = [:]) {
        self.tensors = tensors
        self.scalars = scalars
    }

    /// True when nothing is stored.
    public var isEmpty: Bool { tensors.isEmpty && scalars.isEmpty }
}

/// What the round loop hands a strategy when the fit results of a round start to arrive.
public struct FitRoundContext: Sendable {
    /// Federated round, starting at 1.
    public var round: Int
    /// The global model sent to the clients this round (updates are validated against its layout).
    public var parameters: Parameters
    /// The strategy's state after the previous round (empty at round 1).
    public var state: StrategyState

    /// A context for `round` with the global model `parameters` and the carried `state`.
    public init(round: Int, parameters: Parameters, state: StrategyState = StrategyState()) {
        self.round = round
        self.parameters = parameters
        self.state = state
    }
}

/// The user-level (ε, δ)-DP guarantee of every model released so far, as a DP strategy's
/// accountant states it after a round (DP-FedAvg: Sources/Privacy).
public struct PrivacySpent: Sendable, Equatable, Codable {
    /// ε spent by all rounds so far.
    public var epsilon: Double
    /// The δ that ε is stated at.
    public var delta: Double

    /// (ε, δ) spent so far.
    public init(epsilon: Double, delta: Double) {
        self.epsilon = epsilon
        self.delta = delta
    }

    private enum CodingKeys: String, CodingKey { case epsilon, delta }

    /// JSON (the checkpoint header) has no infinity: ε = ∞ (no noise) is stored as null.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(epsilon.isFinite ? epsilon : nil, forKey: .epsilon)
        try c.encode(delta, forKey: .delta)
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        epsilon = try c.decodeIfPresent(Double.self, forKey: .epsilon) ?? .infinity
        delta = try c.decode(Double.self, forKey: .delta)
    }
}

/// The outcome of one round's aggregation: the new global model, the round's fit metrics and the
/// state to carry into the next round (and into the checkpoint).
public struct FitAggregate: Sendable {
    /// The new global model.
    public var parameters: Parameters
    /// Aggregated fit metrics.
    public var metrics: Metrics
    /// The strategy's state after this round.
    public var state: StrategyState
    /// Privacy spent by all released models including this one (DP strategies only; nil otherwise).
    public var privacy: PrivacySpent?

    /// An aggregate of `parameters`, `metrics`, `state` and the `privacy` spent.
    public init(parameters: Parameters, metrics: Metrics = [:], state: StrategyState = StrategyState(),
                privacy: PrivacySpent? = nil) {
        self.parameters = parameters
        self.metrics = metrics
        self.state = state
        self.privacy = privacy
    }
}

/// One round's aggregation: the round loop `add`s each `FitRes` as it arrives, then calls
/// `finish` once. A linear strategy folds updates into one running sum (O(model) memory); an
/// order-statistic one (median, Krum, ...) buffers them and decides in `finish`.
public protocol FitAggregator: Sendable {
    /// Folds one result in, or throws a `ClientFailure` (kind `.rejected`) saying why it is refused.
    mutating func add(_ result: FitRes, from client: any ClientProxy) throws(ClientFailure)
    /// Number of results accepted so far.
    var resultCount: Int { get }
    /// The new model, metrics and state, or a `StrategyRefusal` given the round's failures.
    func finish(failures: [ClientFailure]) throws(StrategyRefusal) -> FitAggregate
    /// Secure aggregation (`--secagg`): nil when `addSecureAggregate` is supported, else why this
    /// aggregation cannot work from the sum of the updates alone (it needs each client's update).
    var secureAggregationRefusal: String? { get }
    /// Secure aggregation: folds in `result`, the weighted average of `clients` clients' models
    /// (its `numExamples` is their summed weight), unmasked from their sum; the individual updates
    /// never reach the server. A linear aggregation counts it as `clients` results.
    mutating func addSecureAggregate(_ result: FitRes, clients: Int) throws(StrategyRefusal)
    /// True when `addMeasuringNorm` measures the update's norm in the same pass over it as the
    /// add; the server then screens and aggregates an update in one call (without `--clip-norm`,
    /// which needs the norm before the add).
    var fusesUpdateNorm: Bool { get }
    /// Folds one result in like `add`, and returns ‖update − global‖₂ (nil when the layouts
    /// differ or a value is not finite), for the server's outlier note.
    mutating func addMeasuringNorm(_ result: FitRes, from client: any ClientProxy,
                                   global: Parameters) throws(ClientFailure) -> Double?
}

extension FitAggregator {
    /// Default: the norm is a separate pass.
    public var fusesUpdateNorm: Bool { false }

    /// Default: `updateNorm`, then `add`.
    public mutating func addMeasuringNorm(_ result: FitRes, from client: any ClientProxy,
                                          global: Parameters) throws(ClientFailure) -> Double? {
        let norm = updateNorm(result.parameters, from: global)
        try add(result, from: client)
        return norm
    }

    /// Default: the aggregation needs each client's own update.
    public var secureAggregationRefusal: String? {
        "\(type(of: self)) needs each client's own update, which secure aggregation hides from the server; use FedAvg, FedAvgM, FedProx or FedOpt (they only need the sum)"
    }

    /// Default: refused with `secureAggregationRefusal`.
    public mutating func addSecureAggregate(_ result: FitRes, clients: Int) throws(StrategyRefusal) {
        throw StrategyRefusal(secureAggregationRefusal ?? "this aggregation does not take a secure aggregate")
    }
}

/// A federated-learning algorithm, in Flower's vocabulary. The server loop calls exactly these,
/// per round: `configureFit` → clients' `fit` → `makeFitAggregator` (`add` per result as it
/// arrives, then `finish`) → `evaluate` (central) → `configureEvaluate` → clients' `evaluate` →
/// `aggregateEvaluate`. `initializeParameters` is called once before round 1.
///
/// A wrapper (server-side clipping, DP-FedAvg) is a `Strategy` holding another one and wrapping
/// its `FitAggregator`; a new algorithm is usually one `FitAggregator` plus FedAvg's sampling.
public protocol Strategy: Sendable {
    /// Short name recorded in checkpoints and logs (e.g. `FedAvg`).
    var name: String { get }
    /// Seed of the strategy's random choices, stored in checkpoints so a resumed run samples alike.
    var seed: UInt64 { get }
    /// Fewest connected clients before a round starts.
    var minAvailableClients: Int { get }

    /// The initial global model, or nil to ask one client for its parameters.
    func initializeParameters() async throws -> Parameters?
    /// The clients to train this round and the instruction each receives.
    func configureFit(round: Int, parameters: Parameters,
                      clientManager: any SamplingClientManager) -> [(client: any ClientProxy, ins: FitIns)]
    /// The aggregation of this round's fit results (Flower's `aggregate_fit`, made incremental).
    func makeFitAggregator(_ context: FitRoundContext) -> any FitAggregator
    /// The clients to evaluate this round (empty: no federated evaluation).
    func configureEvaluate(round: Int, parameters: Parameters,
                           clientManager: any SamplingClientManager) -> [(client: any ClientProxy, ins: EvaluateIns)]
    /// Aggregates federated evaluation results into a loss (nil: none) and metrics.
    func aggregateEvaluate(round: Int, results: [(client: any ClientProxy, res: EvaluateRes)],
                           failures: [ClientFailure]) -> (loss: Double?, metrics: Metrics)
    /// Central evaluation on the server's own data; nil when the strategy has none.
    func evaluate(round: Int, parameters: Parameters) async throws -> (loss: Double, metrics: Metrics)?
    /// Called before each round: nil to run it, or why training must stop now (DP-FedAvg: the
    /// round would exceed the privacy budget). The server then ends normally with the last model.
    func stopReason(beforeRound round: Int) -> String?
}

extension Strategy {
    /// By default every round runs.
    public func stopReason(beforeRound round: Int) -> String? { nil }
}
