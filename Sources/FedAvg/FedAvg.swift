import FlowerCore

/// Federated Averaging: McMahan, Moore, Ramage, Hampson & Agüera y Arcas, "Communication-Efficient
/// Learning of Deep Networks from Decentralized Data", AISTATS 2017 (arXiv:1602.05629).
///
/// Each round samples `max(minFitClients, ⌊fractionFit × available⌋)` clients (or, with
/// `sampling = .poisson(rate:)`, each client independently with that probability) with a seed
/// derived from `seed` and the round number, sends them the global model and `onFitConfig(round)`, and
/// averages their updates weighted by `numExamples` as they arrive (`WeightedAverage`).
/// Non-finite updates and updates with other names or shapes become failures with a reason.
/// A round is refused when fewer than `minFitClients` results remain, or when any client failed
/// and `acceptFailures` is false. Names and defaults follow Flower's `FedAvg`.
public struct FedAvg: Strategy {
    /// Fraction of available clients sampled for training each round.
    public var fractionFit: Double
    /// Fraction of available clients sampled for federated evaluation (0: none).
    public var fractionEvaluate: Double
    /// Fewest clients sampled for training, and fewest results a round accepts.
    public var minFitClients: Int
    /// Fewest clients sampled for federated evaluation.
    public var minEvaluateClients: Int
    /// Fewest connected clients before a round starts.
    public var minAvailableClients: Int
    /// Whether a round with some failed clients still aggregates the others.
    public var acceptFailures: Bool
    /// How training clients are drawn: `.uniform` (`numFitClients` of them, the default) or
    /// `.poisson(rate:)` (each independently with that probability; `fractionFit` then unused).
    public var sampling: ClientSampling = .uniform
    /// Seed of client sampling (each round uses `SplitMix64.derive(seed:stream: round)`).
    public var seed: UInt64
    /// The initial global model; nil asks one client for its parameters.
    public var initialParameters: Parameters?
    /// Per-round training config sent in `FitIns.config` (epochs, lr, batch_size, ...).
    public var onFitConfig: (@Sendable (Int) -> Config)?
    /// Per-round evaluation config sent in `EvaluateIns.config`.
    public var onEvaluateConfig: (@Sendable (Int) -> Config)?
    /// Central evaluation on the server's data: (round, parameters) → (loss, metrics incl. "accuracy").
    public var evaluateFn: (@Sendable (Int, Parameters) async throws -> (loss: Double, metrics: Metrics)?)?
    /// Aggregates clients' fit metrics; nil: numeric metrics averaged by `numExamples`.
    public var fitMetricsAggregationFn: (@Sendable ([(numExamples: Int, metrics: Metrics)]) -> Metrics)?
    /// Aggregates clients' evaluation metrics; nil: numeric metrics averaged by `numExamples`.
    public var evaluateMetricsAggregationFn: (@Sendable ([(numExamples: Int, metrics: Metrics)]) -> Metrics)?

    public var name: String { "FedAvg" }

    /// A FedAvg with Flower's defaults (all clients, at least 2, failures accepted).
    public init(fractionFit: Double = 1, fractionEvaluate: Double = 1, minFitClients: Int = 2,
                minEvaluateClients: Int = 2, minAvailableClients: Int = 2, acceptFailures: Bool = true,
                seed: UInt64 = 0, initialParameters: Parameters? = nil,
                onFitConfig: (@Sendable (Int) -> Config)? = nil,
                onEvaluateConfig: (@Sendable (Int) -> Config)? = nil,
                evaluateFn: (@Sendable (Int, Parameters) async throws -> (loss: Double, metrics: Metrics)?)? = nil,
                fitMetricsAggregationFn: (@Sendable ([(numExamples: Int, metrics: Metrics)]) -> Metrics)? = nil,
                evaluateMetricsAggregationFn: (@Sendable ([(numExamples: Int, metrics: Metrics)]) -> Metrics)? = nil) {
        self.fractionFit = fractionFit
        self.fractionEvaluate = fractionEvaluate
        self.minFitClients = minFitClients
        self.minEvaluateClients = minEvaluateClients
        self.minAvailableClients = minAvailableClients
        self.acceptFailures = acceptFailures
        self.seed = seed
        self.initialParameters = initialParameters
        self.onFitConfig = onFitConfig
        self.onEvaluateConfig = onEvaluateConfig
        self.evaluateFn = evaluateFn
        self.fitMetricsAggregationFn = fitMetricsAggregationFn
        self.evaluateMetricsAggregationFn = evaluateMetricsAggregationFn
    }

    /// Clients to sample for training: `max(minFitClients, ⌊fractionFit × available⌋)`.
    public func numFitClients(available: Int) -> Int {
        max(minFitClients, Int(Double(available) * fractionFit))
    }

    /// Clients to sample for evaluation: `max(minEvaluateClients, ⌊fractionEvaluate × available⌋)`.
    public func numEvaluationClients(available: Int) -> Int {
        max(minEvaluateClients, Int(Double(available) * fractionEvaluate))
    }

    public func initializeParameters() async throws -> Parameters? { initialParameters }

    public func configureFit(round: Int, parameters: Parameters,
                             clientManager: any SamplingClientManager) -> [(client: any ClientProxy, ins: FitIns)] {
        let ins = FitIns(round: round, parameters: parameters, config: onFitConfig?(round) ?? [:])
        var rng = SplitMix64(seed: SplitMix64.derive(seed: seed, stream: UInt64(max(round, 0)) << 1))
        switch sampling {
        case .uniform:
            let n = numFitClients(available: clientManager.count)
            return clientManager.sample(count: n, using: &rng).map { ($0, ins) }
        case .poisson(let rate):
            return clientManager.poissonSample(rate: rate, using: &rng).map { ($0, ins) }
        }
    }

    public func makeFitAggregator(_ context: FitRoundContext) -> any FitAggregator {
        makeAverage(context)
    }

    /// FedAvg's streaming weighted average for this round, as a concrete type that other
    /// strategies (FedAvgM, FedOpt, DP-FedAvg) wrap.
    public func makeAverage(_ context: FitRoundContext) -> FedAvgAggregator {
        FedAvgAggregator(template: context.parameters, minFitClients: minFitClients, acceptFailures: acceptFailures,
                         metricsAggregation: fitMetricsAggregationFn)
    }

    public func configureEvaluate(round: Int, parameters: Parameters,
                                  clientManager: any SamplingClientManager) -> [(client: any ClientProxy, ins: EvaluateIns)] {
        guard fractionEvaluate > 0 else { return [] }
        let ins = EvaluateIns(round: round, parameters: parameters, config: onEvaluateConfig?(round) ?? [:])
        var rng = SplitMix64(seed: SplitMix64.derive(seed: seed, stream: UInt64(max(round, 0)) << 1 | 1))
        let n = numEvaluationClients(available: clientManager.count)
        return clientManager.sample(count: n, using: &rng).map { ($0, ins) }
    }

    public func aggregateEvaluate(round: Int, results: [(client: any ClientProxy, res: EvaluateRes)],
                                  failures: [ClientFailure]) -> (loss: Double?, metrics: Metrics) {
        guard !results.isEmpty, acceptFailures || failures.isEmpty else { return (nil, [:]) }
        let loss = weightedLossAvg(results.map { ($0.res.numExamples, $0.res.loss) })
        let pairs = results.map { (numExamples: $0.res.numExamples, metrics: $0.res.metrics) }
        return (loss, evaluateMetricsAggregationFn?(pairs) ?? weightedMetricsAvg(pairs))
    }

    public func evaluate(round: Int, parameters: Parameters) async throws -> (loss: Double, metrics: Metrics)? {
        try await evaluateFn?(round, parameters)
    }
}

/// FedAvg's streaming aggregation of one round: a `WeightedAverage` of the parameters plus the metrics.
public struct FedAvgAggregator: FitAggregator {
    private var average: WeightedAverage
    private var metrics: [(numExamples: Int, metrics: Metrics)] = []
    private let minFitClients: Int
    private let acceptFailures: Bool
    private let metricsAggregation: (@Sendable ([(numExamples: Int, metrics: Metrics)]) -> Metrics)?

    /// An empty round expecting updates laid out like `template`.
    public init(template: Parameters, minFitClients: Int, acceptFailures: Bool,
                metricsAggregation: (@Sendable ([(numExamples: Int, metrics: Metrics)]) -> Metrics)? = nil) {
        average = WeightedAverage(template: template)
        self.minFitClients = minFitClients
        self.acceptFailures = acceptFailures
        self.metricsAggregation = metricsAggregation
    }

    public var resultCount: Int { average.count }

    public mutating func add(_ result: FitRes, from client: any ClientProxy) throws(ClientFailure) {
        do throws(UpdateRejection) {
            try average.add(result.parameters, numExamples: result.numExamples)
        } catch {
            throw ClientFailure(clientID: client.id, kind: .rejected, reason: error.description)
        }
        metrics.append((result.numExamples, result.metrics))
    }

    /// The norm is measured in the weighted add's own pass over the update.
    public var fusesUpdateNorm: Bool { true }

    public mutating func addMeasuringNorm(_ result: FitRes, from client: any ClientProxy,
                                          global: Parameters) throws(ClientFailure) -> Double? {
        let norm: Double?
        do throws(UpdateRejection) {
            norm = try average.add(result.parameters, numExamples: result.numExamples, measuringFrom: global)
        } catch {
            throw ClientFailure(clientID: client.id, kind: .rejected, reason: error.description)
        }
        metrics.append((result.numExamples, result.metrics))
        return norm
    }

    /// FedAvg only needs the weighted sum: secure aggregation is supported.
    public var secureAggregationRefusal: String? { nil }

    public mutating func addSecureAggregate(_ result: FitRes, clients: Int) throws(StrategyRefusal) {
        do throws(UpdateRejection) {
            try average.add(average: result.parameters, numExamples: result.numExamples, clients: clients)
        } catch {
            throw StrategyRefusal("the securely aggregated update was refused: \(error)")
        }
        metrics.append((result.numExamples, result.metrics))
    }

    public func finish(failures: [ClientFailure]) throws(StrategyRefusal) -> FitAggregate {
        if let refusal = Self.refusal(results: average.count, failures: failures, minFitClients: minFitClients,
                                      acceptFailures: acceptFailures) {
            throw refusal
        }
        guard let parameters = average.average() else { throw StrategyRefusal("no results to aggregate") }
        return FitAggregate(parameters: parameters, metrics: metricsAggregation?(metrics) ?? weightedMetricsAvg(metrics))
    }

    /// The reason a round with `results` results and these failures cannot be aggregated, if any.
    public static func refusal(results: Int, failures: [ClientFailure], minFitClients: Int,
                        acceptFailures: Bool) -> StrategyRefusal? {
        if !acceptFailures && !failures.isEmpty {
            let first = failures[0]
            return StrategyRefusal("\(failures.count) client(s) failed (first: \(first)) and failures are not accepted")
        }
        if results == 0 {
            return StrategyRefusal("no client returned a usable update")
        }
        if results < minFitClients {
            return StrategyRefusal("only \(results) result(s), fewer than minFitClients = \(minFitClients)")
        }
        return nil
    }
}
