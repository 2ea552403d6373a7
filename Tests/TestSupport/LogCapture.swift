// Log lines kept in memory, so tests can check what was said (a refused peer's reason, a warning).
import Logging
import Synchronization

/// Collects every line logged through `logger` (level and message). Waiters are woken by the
/// line that satisfies them, not by polling.
public final class LogCapture: Sendable {
    private struct State {
        var lines: [(level: Logger.Level, message: String)] = []
        var waiters: [(needle: String, continuation: CheckedContinuation<Bool, Never>)] = []
    }
    private let state = Mutex(State())
    private let label: String

    public init(label: String = "flwr.test") { self.label = label }

    /// A logger (level trace) whose every line lands here.
    public var logger: Logger {
        var l = Logger(label: label) { _ in Handler(capture: self) }
        l.logLevel = .trace
        return l
    }

    /// Every line so far, in order.
    public var lines: [(level: Logger.Level, message: String)] { state.withLock { $0.lines } }
    /// Every line as "level: message", one per line.
    public var text: String { lines.map { "\($0.level): \($0.message)" }.joined(separator: "\n") }
    /// Whether any line contains `needle`.
    public func contains(_ needle: String) -> Bool { lines.contains { $0.message.contains(needle) } }

    /// Waits until a line contains `needle` (true), or `seconds` pass (false).
    public func waitFor(_ needle: String, seconds: Double = 20) async -> Bool {
        let timeout = Task {
            try? await Task.sleep(for: .milliseconds(Int64(seconds * 1000)))
            self.expire(needle)
        }
        defer { timeout.cancel() }
        return await withCheckedContinuation { continuation in
            let satisfied = state.withLock { s -> Bool in
                if s.lines.contains(where: { $0.message.contains(needle) }) { return true }
                s.waiters.append((needle, continuation))
                return false
            }
            if satisfied { continuation.resume(returning: true) }
        }
    }

    private func expire(_ needle: String) {
        let expired = state.withLock { s -> [CheckedContinuation<Bool, Never>] in
            let (gone, kept) = (s.waiters.filter { $0.needle == needle }, s.waiters.filter { $0.needle != needle })
            s.waiters = kept
            return gone.map(\.continuation)
        }
        expired.forEach { $0.resume(returning: false) }
    }

    fileprivate func append(_ level: Logger.Level, _ message: String) {
        let woken = state.withLock { s -> [CheckedContinuation<Bool, Never>] in
            s.lines.append((level, message))
            let (hit, kept) = (s.waiters.filter { message.contains($0.needle) }, s.waiters.filter { !message.contains($0.needle) })
            s.waiters = kept
            return hit.map(\.continuation)
        }
        woken.forEach { $0.resume(returning: true) }
    }

    private struct Handler: LogHandler {
        let capture: LogCapture
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) { capture.append(event.level, event.message.description) }
    }
}

/// A logger that drops everything below critical (for tests that do not read logs).
public let quietLogger: Logger = {
    var l = Logger(label: "flwr.test.quiet")
    l.logLevel = .critical
    return l
}()
