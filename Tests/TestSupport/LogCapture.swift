// Log lines kept in memory, so tests can check what was said (a refused peer's reason, a warning).
import Logging
import Synchronization

/// Collects every line logged through `logger` (level and message). Waiters are woken by the
/// line that satisfies them, not by polling.
public final class LogCapture: Sendable {
    private struct State {
        var lines: [(level: Logger.Level, message: String)] = []
        var waiters: [(id: Int, needle: String, continuation: CheckedContinuation<Bool, Never>)] = []
        var nextID = 0
        /// Waiters whose deadline passed before they were queued.
        var expiredEarly: Set<Int> = []
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
        let id = state.withLock { s -> Int in s.nextID += 1; return s.nextID }
        let timeout = Task {
            try? await Task.sleep(for: .milliseconds(Int64(seconds * 1000)))  // the deadline of a wait that would hang, not a poll
            if !Task.isCancelled { self.expire(id) }
        }
        defer { timeout.cancel() }
        return await withCheckedContinuation { continuation in
            let answer = state.withLock { s -> Bool? in
                if s.lines.contains(where: { $0.message.contains(needle) }) { return true }
                if s.expiredEarly.remove(id) != nil { return false }
                s.waiters.append((id, needle, continuation))
                return nil
            }
            if let answer { continuation.resume(returning: answer) }
        }
    }

    /// Ends waiter `id` with false if it is still waiting (its own deadline, not another's).
    private func expire(_ id: Int) {
        let expired = state.withLock { s -> CheckedContinuation<Bool, Never>? in
            guard let i = s.waiters.firstIndex(where: { $0.id == id }) else { s.expiredEarly.insert(id); return nil }
            return s.waiters.remove(at: i).continuation
        }
        expired?.resume(returning: false)
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
