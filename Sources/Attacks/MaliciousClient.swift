import FlowerCore

/// A decorator over any FlowerCore `Client` that trains honestly, then poisons what it sends
/// (`poison`). It knows nothing of the model: it works on the flat parameter buffer. Each fit
/// answer carries the metric `attack` = the attack's name (FlowerCore's `attackMetricKey`), so the
/// server's history records which sampled clients were malicious; evaluation is left honest.
public struct MaliciousClient: Client {
    /// The honest client doing the training.
    public let inner: any Client
    public let settings: AttackSettings
    /// The partition (mixes into the noise seed so malicious clients differ).
    public let partition: Int

    public init(wrapping inner: any Client, settings: AttackSettings, partition: Int) {
        self.inner = inner
        self.settings = settings
        self.partition = partition
    }

    public func getParameters(_ ins: GetParametersIns) async throws -> ParametersRes {
        try await inner.getParameters(ins)
    }

    public func fit(_ ins: FitIns) async throws -> FitRes {
        var res = try await inner.fit(ins)
        guard res.status.code == .ok else { return res }
        if res.parameters.hasSameLayout(as: ins.parameters) {
            let stream = UInt64(max(ins.round, 0)) << 20 | UInt64(max(partition, 0) & 0xFFFFF)
            var rng = SplitMix64(seed: SplitMix64.derive(seed: settings.seed, stream: stream))
            res.parameters = poison(res.parameters, global: ins.parameters, settings: settings, using: &rng)
        }
        if settings.kind == .claimExamples { res.numExamples = settings.claimedExamples }
        res.metrics[attackMetricKey] = .string(settings.kind.rawValue)
        return res
    }

    public func evaluate(_ ins: EvaluateIns) async throws -> EvaluateRes {
        try await inner.evaluate(ins)
    }
}
