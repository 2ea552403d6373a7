import FedAvg
import FlowerCore

/// A round's updates held in memory until `finish`, for the order-statistic rules (median,
/// trimmed mean, Krum, Bulyan) that cannot be computed as a running sum. Memory: one model per
/// accepted update (n × model), against FedAvg's one running sum; `flwr --help` says so.
/// Each update is validated as FedAvg validates it (layout, finite values, positive weight).
public struct BufferedAggregator: FitAggregator {
    /// One accepted update.
    public struct Update: Sendable {
        public var clientID: String
        public var values: [Float]
        public var numExamples: Int
    }

    /// The rule: the buffered updates (at least one) → the new flat model, or a reason it cannot.
    public typealias Rule = @Sendable ([Update]) throws(RobustAggregationError) -> [Float]

    private let template: Parameters
    private let minFitClients: Int
    private let acceptFailures: Bool
    private let rule: Rule
    private let metricsAggregation: (@Sendable ([(numExamples: Int, metrics: Metrics)]) -> Metrics)?
    private var updates: [Update] = []
    private var metrics: [(numExamples: Int, metrics: Metrics)] = []

    /// An empty round expecting updates laid out like `context.parameters`, aggregated by `rule`
    /// under `base`'s failure policy.
    public init(_ context: FitRoundContext, base: FedAvg, rule: @escaping Rule) {
        template = context.parameters
        minFitClients = base.minFitClients
        acceptFailures = base.acceptFailures
        metricsAggregation = base.fitMetricsAggregationFn
        self.rule = rule
    }

    public var resultCount: Int { updates.count }

    /// Order statistics and distances are taken over the individual updates, which secure aggregation hides.
    public var secureAggregationRefusal: String? {
        "robust aggregation (median, trimmed mean, Krum, Bulyan) ranks or compares each client's own update, which secure aggregation hides from the server; use FedAvg, FedAvgM, FedProx or FedOpt with --secagg"
    }

    public mutating func add(_ result: FitRes, from client: any ClientProxy) throws(ClientFailure) {
        do throws(UpdateRejection) {
            try WeightedAverage(template: template).validate(result.parameters, numExamples: result.numExamples)
        } catch {
            throw ClientFailure(clientID: client.id, kind: .rejected, reason: error.description)
        }
        updates.append(Update(clientID: client.id, values: result.parameters.values, numExamples: result.numExamples))
        metrics.append((result.numExamples, result.metrics))
    }

    public func finish(failures: [ClientFailure]) throws(StrategyRefusal) -> FitAggregate {
        if let refusal = FedAvgAggregator.refusal(results: updates.count, failures: failures,
                                                  minFitClients: minFitClients, acceptFailures: acceptFailures) {
            throw refusal
        }
        let values: [Float]
        do throws(RobustAggregationError) { values = try rule(updates) } catch { throw StrategyRefusal(error.reason) }
        var out = template
        out.values = values
        return FitAggregate(parameters: out, metrics: metricsAggregation?(metrics) ?? weightedMetricsAvg(metrics))
    }
}

/// FedAvg's streaming average followed by a server-side step on (global, average, state): the
/// shape of FedAvgM and the FedOpt family. Memory stays O(model).
public struct ServerStepAggregator: FitAggregator {
    /// The step: (context, average) → (new model values, new state).
    public typealias Step = @Sendable (FitRoundContext, [Float]) -> (values: [Float], state: StrategyState)

    private var inner: FedAvgAggregator
    private let context: FitRoundContext
    private let step: Step

    /// FedAvg's aggregation of `base` for `context`, then `step`.
    public init(_ context: FitRoundContext, base: FedAvg, step: @escaping Step) {
        inner = base.makeAverage(context)
        self.context = context
        self.step = step
    }

    public var resultCount: Int { inner.resultCount }

    public mutating func add(_ result: FitRes, from client: any ClientProxy) throws(ClientFailure) {
        try inner.add(result, from: client)
    }

    /// The server step only needs FedAvg's average: secure aggregation is supported.
    public var secureAggregationRefusal: String? { inner.secureAggregationRefusal }

    public mutating func addSecureAggregate(_ result: FitRes, clients: Int) throws(StrategyRefusal) {
        try inner.addSecureAggregate(result, clients: clients)
    }

    public func finish(failures: [ClientFailure]) throws(StrategyRefusal) -> FitAggregate {
        var out = try inner.finish(failures: failures)
        let (values, state) = step(context, out.parameters.values)
        out.parameters.values = values
        out.state = state
        return out
    }
}

extension StrategyState {
    /// The buffer `name` if it holds exactly `count` values (one per model value), else nil: a
    /// state written for another model (or damaged) restarts from zeros instead of misindexing.
    func buffer(_ name: String, count: Int) -> [Float]? {
        guard let b = tensors[name], b.count == count else { return nil }
        return b
    }
}
