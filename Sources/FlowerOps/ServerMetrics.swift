// The server's metrics, fed by the round loop (as a FlowerCore `ServerObserver`) and, at scrape
// time, by the transport's counters and the client registry.
import CoreMetrics
import FlowerCore
import Metrics
import Synchronization

/// Records a federated server's progress through swift-metrics (see `FlwrMetrics.server`).
public final class ServerMetrics: ServerObserver, Sendable {
    private let roundsCompleted: Counter
    private let currentRound: Gauge
    private let plannedRounds: Gauge
    private let roundDuration: CoreMetrics.Timer
    private let clientsConnected: Gauge
    private let fitResults: Counter
    private let fitFailures: [ClientFailure.Kind: Counter]
    private let evaluateResults: Counter
    private let evaluateFailures: [ClientFailure.Kind: Counter]
    private let receivedBytes: Counter
    private let sentBytes: Counter
    private let loss: Gauge
    private let accuracy: Gauge
    private let factory: any MetricsFactory
    private let lastBytes = Mutex<(received: Int, sent: Int)>((0, 0))

    /// Every failure kind, as its label value.
    static let kinds: [(ClientFailure.Kind, String)] = [(.error, "error"), (.timeout, "timeout"), (.status, "status"),
                                                         (.rejected, "rejected")]

    /// Creates every server metric in `factory` (all present from the first scrape, at 0).
    public init(factory: any MetricsFactory) {
        self.factory = factory
        roundsCompleted = Counter(label: FlwrMetrics.roundsCompleted.name, factory: factory)
        currentRound = Gauge(label: FlwrMetrics.currentRound.name, factory: factory)
        plannedRounds = Gauge(label: FlwrMetrics.plannedRounds.name, factory: factory)
        roundDuration = CoreMetrics.Timer(label: FlwrMetrics.roundDuration.name, factory: factory)
        clientsConnected = Gauge(label: FlwrMetrics.clientsConnected.name, factory: factory)
        fitResults = Counter(label: FlwrMetrics.fitResults.name, factory: factory)
        evaluateResults = Counter(label: FlwrMetrics.evaluateResults.name, factory: factory)
        var fit: [ClientFailure.Kind: Counter] = [:]
        var eval: [ClientFailure.Kind: Counter] = [:]
        for (kind, label) in Self.kinds {
            fit[kind] = Counter(label: FlwrMetrics.fitFailures.name, dimensions: [("kind", label)], factory: factory)
            eval[kind] = Counter(label: FlwrMetrics.evaluateFailures.name, dimensions: [("kind", label)], factory: factory)
        }
        fitFailures = fit
        evaluateFailures = eval
        receivedBytes = Counter(label: FlwrMetrics.receivedBytes.name, factory: factory)
        sentBytes = Counter(label: FlwrMetrics.sentBytes.name, factory: factory)
        loss = Gauge(label: FlwrMetrics.loss.name, factory: factory)
        accuracy = Gauge(label: FlwrMetrics.accuracy.name, factory: factory)
        for c in [roundsCompleted, fitResults, evaluateResults, receivedBytes, sentBytes] { c.increment(by: 0) }
        for c in Array(fit.values) + Array(eval.values) { c.increment(by: 0) }
        loss.record(Double.nan)
        accuracy.record(Double.nan)
        // NaN until a round reports it (no differential privacy: stays NaN).
        for mechanism in ["data", "dp_fedavg", "dp_sgd"] { setEpsilon(.nan, mechanism: mechanism) }
    }

    /// Sets the connected-client count (call at scrape time).
    public func setClientsConnected(_ n: Int) { clientsConnected.record(n) }

    /// Brings the byte counters up to the transport's running totals (call at scrape time).
    public func setWireTotals(received: Int, sent: Int) {
        let delta = lastBytes.withLock { last -> (Int, Int) in
            let d = (max(0, received - last.received), max(0, sent - last.sent))
            last = (max(last.received, received), max(last.sent, sent))
            return d
        }
        if delta.0 > 0 { receivedBytes.increment(by: delta.0) }
        if delta.1 > 0 { sentBytes.increment(by: delta.1) }
    }

    /// Records ε spent by `mechanism` ("data" or "dp_fedavg").
    public func setEpsilon(_ epsilon: Double, mechanism: String) {
        Gauge(label: FlwrMetrics.epsilon.name, dimensions: [("mechanism", mechanism)], factory: factory).record(epsilon)
    }

    /// Sets the configured number of rounds and, on resume, the round already completed.
    public func start(plannedRounds rounds: Int, completed: Int) {
        plannedRounds.record(rounds)
        currentRound.record(completed)
    }

    public func roundStarted(round: Int, of numRounds: Int, sampled: Int) {
        plannedRounds.record(numRounds)
        currentRound.record(round)
    }

    public func fitFinished(round: Int, results: Int, failures: [ClientFailure]) {
        fitResults.increment(by: results)
        for f in failures { fitFailures[f.kind]?.increment() }
    }

    public func evaluateFinished(round: Int, results: Int, failures: [ClientFailure]) {
        evaluateResults.increment(by: results)
        for f in failures { evaluateFailures[f.kind]?.increment() }
    }

    public func roundCompleted(_ record: RoundRecord, of numRounds: Int) {
        roundsCompleted.increment()
        currentRound.record(record.round)
        roundDuration.recordNanoseconds(Int64(max(0, record.seconds) * 1e9))
        if let l = record.loss { loss.record(l) }
        if let a = record.accuracy { accuracy.record(a) }
        for (mechanism, value) in RoundEpsilon.values(of: record) { setEpsilon(value, mechanism: mechanism) }
        for (site, value) in record.siteEpsilon ?? [:] { setEpsilon(value, mechanism: "dp_sgd_site_\(site)") }
    }
}

/// Where a round's ε comes from: the `epsilon` fit metric clients report for data-level noise
/// (averaged by the strategy like any fit metric), and `dp_fedavg_epsilon` in the aggregated fit
/// or central metrics for a DP-FedAvg strategy's accountant.
public enum RoundEpsilon {
    /// Key of the data-level ε clients report in `FitRes.metrics`.
    public static let dataKey = "epsilon"
    /// Key of DP-FedAvg's cumulative ε in the round's aggregated metrics.
    public static let dpFedAvgKey = "dp_fedavg_epsilon"

    /// (mechanism, ε) pairs recorded in `record`.
    public static func values(of record: RoundRecord) -> [(String, Double)] {
        var out: [(String, Double)] = []
        if let e = record.fitMetrics[dataKey]?.doubleValue, e.isFinite { out.append(("data", e)) }
        // DP-FedAvg's accountant (Sources/Privacy) records its cumulative ε as the round's `privacy`;
        // a strategy may also report it under `dp_fedavg_epsilon` in its metrics.
        if let e = record.privacy?.epsilon ?? (record.fitMetrics[dpFedAvgKey] ?? record.centralMetrics[dpFedAvgKey])?.doubleValue,
           e.isFinite {
            out.append(("dp_fedavg", e))
        }
        // Record-level DP-SGD: the worst (largest) ε any site reported this round.
        if let worst = record.worstSiteEpsilon { out.append(("dp_sgd", worst.epsilon)) }
        return out
    }
}
