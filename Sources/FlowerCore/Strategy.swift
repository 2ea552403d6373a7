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

/// A streaming fold of fit results: the round loop `add`s each `FitRes` as it arrives, so the
/// server holds one running aggregate instead of every client's update.
public protocol FitAggregator: Sendable {
    /// Folds one result in, or throws a `ClientFailure` (kind `.rejected`) saying why it is refused.
    mutating func add(_ result: FitRes, from client: any ClientProxy) throws(ClientFailure)
    /// Number of results folded in so far.
    var resultCount: Int { get }
    /// The aggregated parameters and metrics, or a `StrategyRefusal` given the round's failures.
    func finish(failures: [ClientFailure]) throws(StrategyRefusal) -> (parameters: Parameters, metrics: Metrics)
}

/// A federated-learning algorithm, in Flower's vocabulary. The server loop calls, per round:
/// `configureFit` → clients' `fit` → `makeFitAggregator`/`aggregateFit` → `evaluate` (central)
/// → `configureEvaluate` → clients' `evaluate` → `aggregateEvaluate`.
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
    /// A streaming aggregator for this round, validating against `parameters` (the global model sent).
    func makeFitAggregator(round: Int, parameters: Parameters) -> any FitAggregator
    /// Aggregates a complete list of results (Flower's `aggregate_fit`); nil parameters keep the model.
    func aggregateFit(round: Int, results: [(client: any ClientProxy, res: FitRes)],
                      failures: [ClientFailure]) throws(StrategyRefusal) -> (parameters: Parameters?, metrics: Metrics)
    /// The clients to evaluate this round (empty: no federated evaluation).
    func configureEvaluate(round: Int, parameters: Parameters,
                           clientManager: any SamplingClientManager) -> [(client: any ClientProxy, ins: EvaluateIns)]
    /// Aggregates federated evaluation results into a loss (nil: none) and metrics.
    func aggregateEvaluate(round: Int, results: [(client: any ClientProxy, res: EvaluateRes)],
                           failures: [ClientFailure]) -> (loss: Double?, metrics: Metrics)
    /// Central evaluation on the server's own data; nil when the strategy has none.
    func evaluate(round: Int, parameters: Parameters) async throws -> (loss: Double, metrics: Metrics)?
}
