import ArgumentParser
import FlowerOps
import FlowerRuntime
import Logging

/// Logging flags shared by every long-running command.
struct LogOptions: ParsableArguments {
    @Option(help: "Log level: trace, debug, info, notice, warning, error or critical.") var logLevel: String = "info"
    @Option(help: "Log line format: text (human-readable) or json (one JSON object per line: time, level, module, message, metadata; for cluster log pipelines).") var logFormat: String = "text"

    func validate() throws { _ = try validating { try logSettings(level: logLevel, format: logFormat) } }

    /// Sends swift-log output to stderr at the chosen level (once per process) and returns a logger.
    func bootstrap(label: String) -> Logger {
        let settings = (try? logSettings(level: logLevel, format: logFormat)) ?? (.info, false)
        return LoggingBootstrap.logger(label: label, level: settings.level, json: settings.json)
    }
}

/// Runs a library check and turns its typed error into a usage error (the message is unchanged).
@discardableResult
func validating<T>(_ check: () throws -> T) throws -> T { do { return try check() } catch { throw ValidationError("\(error)") } }
