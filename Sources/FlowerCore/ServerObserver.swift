/// Watches the round loop as it runs, for operations (metrics, dashboards): the server calls it
/// at fixed points of every round. FlowerCore stays free of any metrics library; the CLI wires an
/// implementation (FlowerOps' `ServerMetrics`, `TensorBoardWriter`) through `ServerOptions.observer`.
///
/// Calls come from the task running `Server.fit`, one at a time and in order; an implementation
/// must return quickly (record, don't compute) and must not throw.
public protocol ServerObserver: Sendable {
    /// A round (attempt) starts its fit phase on `sampled` clients.
    func roundStarted(round: Int, of numRounds: Int, sampled: Int)
    /// The fit phase ended: `results` answers accepted by the strategy, `failures` lost.
    func fitFinished(round: Int, results: Int, failures: [ClientFailure])
    /// The federated evaluation phase ended (not called when the round had no evaluate calls).
    func evaluateFinished(round: Int, results: Int, failures: [ClientFailure])
    /// The round completed and was recorded (after the checkpoint and `history.jsonl` line).
    func roundCompleted(_ record: RoundRecord, of numRounds: Int)
}

extension ServerObserver {
    public func roundStarted(round: Int, of numRounds: Int, sampled: Int) {}
    public func fitFinished(round: Int, results: Int, failures: [ClientFailure]) {}
    public func evaluateFinished(round: Int, results: Int, failures: [ClientFailure]) {}
    public func roundCompleted(_ record: RoundRecord, of numRounds: Int) {}
}

/// Several observers called in order.
public struct ServerObservers: ServerObserver {
    /// The observers, called in this order.
    public var observers: [any ServerObserver]

    /// Observers called in the given order.
    public init(_ observers: [any ServerObserver]) { self.observers = observers }

    public func roundStarted(round: Int, of numRounds: Int, sampled: Int) {
        for o in observers { o.roundStarted(round: round, of: numRounds, sampled: sampled) }
    }
    public func fitFinished(round: Int, results: Int, failures: [ClientFailure]) {
        for o in observers { o.fitFinished(round: round, results: results, failures: failures) }
    }
    public func evaluateFinished(round: Int, results: Int, failures: [ClientFailure]) {
        for o in observers { o.evaluateFinished(round: round, results: results, failures: failures) }
    }
    public func roundCompleted(_ record: RoundRecord, of numRounds: Int) {
        for o in observers { o.roundCompleted(record, of: numRounds) }
    }
}
