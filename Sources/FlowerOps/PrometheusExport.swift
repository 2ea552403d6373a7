// The swift-metrics backend that writes Prometheus text: swift-prometheus's collector registry,
// with the help text and buckets of flwr's catalogue. (swift-prometheus's own
// PrometheusMetricsFactory registers every family with an empty help text; this one names what
// each metric means, so `# HELP` lines appear in /metrics.)
import CoreMetrics
import Prometheus
import Synchronization

/// A swift-metrics factory over a Prometheus registry, with flwr's help texts and buckets.
public struct FlwrMetricsFactory: MetricsFactory, Sendable {
    /// Where the metrics live; `exposition()` renders it.
    public let registry: PrometheusCollectorRegistry
    /// Run before every rendering, to refresh values read at scrape time (connected clients, bytes).
    let collectors: Collectors

    /// A factory over a fresh registry.
    public init() {
        registry = PrometheusCollectorRegistry()
        collectors = Collectors()
    }

    /// Makes this factory swift-metrics' process-wide backend (`MetricsSystem.bootstrap`; once per process).
    public func installAsGlobalBackend() {
        MetricsSystem.bootstrap(self)
    }

    /// Calls `collect` before each rendering (it reads current values into gauges and counters).
    public func onScrape(_ collect: @escaping @Sendable () -> Void) {
        collectors.list.withLock { $0.append(collect) }
    }

    /// The Prometheus text exposition (format 0.0.4) of every metric, refreshed first.
    public func exposition() -> String {
        let list = collectors.list.withLock { $0 }
        for c in list { c() }
        return registry.emitToString()
    }

    private func info(_ label: String) -> (help: String, buckets: [Double]) {
        let i = FlwrMetrics.byName[label]
        return (i?.help ?? "", i?.buckets ?? [])
    }

    public func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        registry.makeCounter(name: label, labels: dimensions, help: info(label).help)
    }

    public func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        registry.makeCounter(name: label, labels: dimensions, help: info(label).help)
    }

    public func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        let i = info(label)
        guard aggregate else { return registry.makeGauge(name: label, labels: dimensions, help: i.help) }
        return registry.makeValueHistogram(name: label, labels: dimensions,
                                           buckets: i.buckets.isEmpty ? [1, 10, 100, 1000] : i.buckets, help: i.help)
    }

    public func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        registry.makeGauge(name: label, labels: dimensions, help: info(label).help)
    }

    public func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        let i = info(label)
        let seconds = i.buckets.isEmpty ? [0.01, 0.1, 1, 10, 100] : i.buckets
        return registry.makeDurationHistogram(name: label, labels: dimensions,
                                              buckets: seconds.map { .nanoseconds(Int64($0 * 1e9)) }, help: i.help)
    }

    public func destroyCounter(_ handler: any CounterHandler) {
        if let c = handler as? Prometheus.Counter { registry.unregisterCounter(c) }
    }

    public func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) {
        if let c = handler as? Prometheus.Counter { registry.unregisterCounter(c) }
    }

    public func destroyRecorder(_ handler: any RecorderHandler) {
        if let g = handler as? Prometheus.Gauge { registry.unregisterGauge(g) }
        if let h = handler as? ValueHistogram { registry.unregisterValueHistogram(h) }
    }

    public func destroyMeter(_ handler: any MeterHandler) {
        if let g = handler as? Prometheus.Gauge { registry.unregisterGauge(g) }
    }

    public func destroyTimer(_ handler: any TimerHandler) {
        if let h = handler as? DurationHistogram { registry.unregisterDurationHistogram(h) }
    }
}

/// The scrape-time collectors of a factory (a reference, so copies of the factory share them).
final class Collectors: Sendable {
    let list = Mutex<[@Sendable () -> Void]>([])
}
