// swift-log's one bootstrap per process: text lines on stderr, or `--log-format json` lines
// (JSONLogHandler), at the level the command was given.
import Foundation
import Logging

/// Bootstraps swift-log once per process (later calls keep the first handler) and makes loggers.
public enum LoggingBootstrap {
    nonisolated(unsafe) private static var done = false
    private static let lock = NSLock()

    /// Sends swift-log output to standard error at `level`, as text or JSON lines; only the first call takes effect.
    public static func once(level: Logger.Level, json: Bool = false) {
        lock.lock(); defer { lock.unlock() }
        guard !done else { return }
        done = true
        if json {
            LoggingSystem.bootstrap { label in
                var handler = JSONLogHandler(label: label)
                handler.logLevel = level
                return handler
            }
            return
        }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }

    /// Bootstraps (once) and returns a logger for `label` at `level`.
    public static func logger(label: String, level: Logger.Level, json: Bool) -> Logger {
        once(level: level, json: json)
        var logger = Logger(label: label)
        logger.logLevel = level
        return logger
    }
}
