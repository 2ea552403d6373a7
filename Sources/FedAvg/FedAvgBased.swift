import FlowerCore

/// A strategy that samples, configures and evaluates clients exactly as FedAvg does and differs
/// only in how a round's updates become the new global model (FedAvgM, FedOpt, FedMedian, Krum,
/// ...), or in what it adds to FedAvg's instructions (FedProx). Conforming is `name`, `base` and
/// `makeFitAggregator`; everything else defaults to `base`'s.
public protocol FedAvgBased: Strategy {
    /// The FedAvg whose sampling, configs, evaluation and failure policy this strategy uses.
    var base: FedAvg { get }
}

extension FedAvgBased {
    public var seed: UInt64 { base.seed }
    public var minAvailableClients: Int { base.minAvailableClients }

    public func initializeParameters() async throws -> Parameters? { try await base.initializeParameters() }

    public func configureFit(round: Int, parameters: Parameters,
                             clientManager: any SamplingClientManager) -> [(client: any ClientProxy, ins: FitIns)] {
        base.configureFit(round: round, parameters: parameters, clientManager: clientManager)
    }

    public func configureEvaluate(round: Int, parameters: Parameters,
                                  clientManager: any SamplingClientManager) -> [(client: any ClientProxy, ins: EvaluateIns)] {
        base.configureEvaluate(round: round, parameters: parameters, clientManager: clientManager)
    }

    public func aggregateEvaluate(round: Int, results: [(client: any ClientProxy, res: EvaluateRes)],
                                  failures: [ClientFailure]) -> (loss: Double?, metrics: Metrics) {
        base.aggregateEvaluate(round: round, results: results, failures: failures)
    }

    public func evaluate(round: Int, parameters: Parameters) async throws -> (loss: Double, metrics: Metrics)? {
        try await base.evaluate(round: round, parameters: parameters)
    }
}
