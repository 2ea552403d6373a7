// A client's metrics: a wrapper around any FlowerCore `Client` that times and counts its work.
import CoreMetrics
import FlowerBase
import FlowerCore
import Metrics
import Synchronization

/// A client process's metrics (see `FlwrMetrics.client`), all present from the first scrape.
public final class ClientMetrics: Sendable {
    let fitDuration: CoreMetrics.Timer
    let fits: Counter
    let fitFailures: Counter
    let evaluations: Counter
    let examples: Counter
    let imagesPerSecond: Gauge
    let epsilon: Gauge

    /// Creates every client metric in `factory` (counters at 0, gauges at 0 or NaN).
    public init(factory: any MetricsFactory) {
        fitDuration = CoreMetrics.Timer(label: FlwrMetrics.clientFitDuration.name, factory: factory)
        fits = Counter(label: FlwrMetrics.clientFits.name, factory: factory)
        fitFailures = Counter(label: FlwrMetrics.clientFitFailures.name, factory: factory)
        evaluations = Counter(label: FlwrMetrics.clientEvaluations.name, factory: factory)
        examples = Counter(label: FlwrMetrics.clientExamplesTrained.name, factory: factory)
        imagesPerSecond = Gauge(label: FlwrMetrics.clientImagesPerSecond.name, factory: factory)
        epsilon = Gauge(label: FlwrMetrics.clientEpsilon.name, factory: factory)
        for c in [fits, fitFailures, evaluations, examples] { c.increment(by: 0) }
        imagesPerSecond.record(0)
        epsilon.record(Double.nan)
    }
}

/// A `Client` that records every call in `ClientMetrics` and, when the client's data is
/// privatised, reports the data-level ε in its fit metrics (`RoundEpsilon.dataKey`) so the server
/// can expose it.
public struct InstrumentedClient: Client {
    /// The client doing the work.
    public let inner: any Client
    /// Epochs a fit runs when the instruction does not say (the client's own --epochs).
    public let defaultEpochs: Int
    /// ε of the Laplace release this client trains on; nil without data-level DP.
    public let epsilon: Double?
    private let metrics: ClientMetrics

    /// Wraps `inner`, recording into `metrics`.
    public init(_ inner: any Client, defaultEpochs: Int, epsilon: Double?, metrics: ClientMetrics) {
        self.inner = inner
        self.defaultEpochs = defaultEpochs
        self.epsilon = epsilon
        self.metrics = metrics
        if let epsilon { metrics.epsilon.record(epsilon) }
    }

    public func getParameters(_ ins: GetParametersIns) async throws -> ParametersRes {
        try await inner.getParameters(ins)
    }

    public func fit(_ ins: FitIns) async throws -> FitRes {
        let start = ContinuousClock.now
        var res: FitRes
        do { res = try await inner.fit(ins) } catch {
            metrics.fitFailures.increment()
            throw error
        }
        guard res.status.code == .ok else {
            metrics.fitFailures.increment()
            return res
        }
        let elapsed = start.duration(to: .now)
        let seconds = elapsed.seconds
        let epochs = max(1, ins.config["epochs"]?.intValue ?? defaultEpochs)
        let (trained, overflow) = max(0, res.numExamples).multipliedReportingOverflow(by: epochs)
        metrics.fits.increment()
        metrics.fitDuration.recordNanoseconds(Int64(seconds * 1e9))
        if !overflow {
            metrics.examples.increment(by: trained)
            metrics.imagesPerSecond.record(Double(trained) / max(seconds, 1e-9))
        }
        if let epsilon { res.metrics[RoundEpsilon.dataKey] = .double(epsilon) }
        return res
    }

    public func evaluate(_ ins: EvaluateIns) async throws -> EvaluateRes {
        let res = try await inner.evaluate(ins)
        metrics.evaluations.increment()
        return res
    }
}

/// The connected/registered state of a client process (its /readyz and `flwr_client_connected`).
public final class ClientConnectionState: Sendable {
    private let gauge: Gauge
    private let state: Synchronization.Mutex<String?>

    /// Starts "not connected yet".
    public init(factory: any MetricsFactory) {
        gauge = Gauge(label: FlwrMetrics.clientConnected.name, factory: factory)
        gauge.record(0)
        state = Synchronization.Mutex("not connected to the server yet")
    }

    /// The client joined (`true`) or lost (`false`) its session.
    public func set(connected: Bool, detail: String) {
        gauge.record(connected ? 1 : 0)
        state.withLock { $0 = connected ? nil : detail }
    }

    /// Ready when connected and registered; else why not.
    public var readiness: Readiness { state.withLock { $0.map(Readiness.notReady) ?? .ready } }
}
