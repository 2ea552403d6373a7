// Rate-limited log lines for events a peer can repeat at will (refused connections, timeouts,
// malformed frames): a flood of 7,000 identical warnings becomes one line per interval with a count.
import Logging
import Synchronization

/// Logs the first occurrence of each key at once, then at most one line per `interval` for that
/// key, carrying how many occurrences it stands for.
///
/// For key k with events at t0 < t1 < ...: the event at t0 is logged as is; events within
/// `interval` of the last logged one are only counted; the next event after the interval is
/// logged with "(N more like this in the last S s)". `flush()` (call it once per interval, e.g.
/// from a repeating timer) reports counts whose interval has ended even when no event follows,
/// so a flood that stops is still accounted for. Keys are call-site constants such as
/// "refused connection"; peer-specific text belongs in the message, not in the key. At most
/// `maxKeys` keys are tracked; past that, new keys share one "(other)" entry.
public final class LogThrottle: Sendable {
    private struct Entry {
        var windowStart: Duration
        var suppressed: Int
        var level: Logger.Level
        var lastMessage: String
    }

    private let logger: Logger
    private let interval: Duration
    private let maxKeys: Int
    private let now: @Sendable () -> Duration
    private let entries = Mutex<[String: Entry]>([:])

    /// A throttle logging through `logger`. `now` is a monotonic clock (default: time since
    /// the throttle was made, from `ContinuousClock`); tests pass a fake one.
    public init(logger: Logger, interval: Duration = .seconds(10), maxKeys: Int = 256,
                now: (@Sendable () -> Duration)? = nil) {
        self.logger = logger
        self.interval = interval
        self.maxKeys = max(1, maxKeys)
        if let now {
            self.now = now
        } else {
            let origin = ContinuousClock.now
            self.now = { ContinuousClock.now - origin }
        }
    }

    /// Logs `message` at `level` under `key`, or counts it if `key` was logged less than
    /// `interval` ago. Returns whether a line was written.
    @discardableResult
    public func log(_ level: Logger.Level, key: String, _ message: @autoclosure () -> String) -> Bool {
        let t = now()
        let line: String? = entries.withLock { table in
            var key = key
            if table[key] == nil && table.count >= maxKeys {
                table = table.filter { t - $0.value.windowStart < interval || $0.value.suppressed > 0 }
                if table.count >= maxKeys { key = "(other)" }
            }
            guard var entry = table[key] else {
                let text = message()
                table[key] = Entry(windowStart: t, suppressed: 0, level: level, lastMessage: text)
                return text
            }
            if t - entry.windowStart < interval {
                entry.suppressed += 1
                entry.level = level
                entry.lastMessage = message()
                table[key] = entry
                return nil
            }
            let text = message()
            let suffix = entry.suppressed > 0 ? " (\(entry.suppressed) more like this in the last \(Self.seconds(t - entry.windowStart)) s)" : ""
            table[key] = Entry(windowStart: t, suppressed: 0, level: level, lastMessage: text)
            return text + suffix
        }
        guard let line else { return false }
        logger.log(level: level, "\(line)")
        return true
    }

    /// `log(.warning, ...)`.
    @discardableResult
    public func warning(key: String, _ message: @autoclosure () -> String) -> Bool {
        log(.warning, key: key, message())
    }

    /// Writes one line per key whose interval has ended with occurrences not yet reported
    /// ("N more like this in the last S s: <last message>") and forgets idle keys. Returns the
    /// number of lines written.
    @discardableResult
    public func flush() -> Int {
        let t = now()
        let lines: [(Logger.Level, String)] = entries.withLock { table in
            var out: [(Logger.Level, String)] = []
            for (key, entry) in table where t - entry.windowStart >= interval {
                if entry.suppressed > 0 {
                    out.append((entry.level, "\(entry.suppressed) more like this in the last \(Self.seconds(t - entry.windowStart)) s: \(entry.lastMessage)"))
                }
                table[key] = nil
            }
            return out
        }
        for (level, line) in lines { logger.log(level: level, "\(line)") }
        return lines.count
    }

    static func seconds(_ d: Duration) -> String {
        let (s, atto) = d.components
        let tenths = atto / 100_000_000_000_000_000
        return tenths == 0 ? "\(s)" : "\(s).\(tenths)"
    }
}
