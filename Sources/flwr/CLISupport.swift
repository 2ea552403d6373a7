import ArgumentParser
import CIFARLoader
import FlowerCore
import FlowerOps
import Foundation
import Logging

/// Failures of the CLI's own glue, each saying what to do.
enum CLIError: Error, CustomStringConvertible {
    case emptyData(String)
    case badFlag(String)
    case io(path: String, detail: String)

    var description: String {
        switch self {
        case .emptyData(let s): return "\(s); check --dataset and --data-dir"
        case .badFlag(let s): return s
        case .io(let path, let detail): return "cannot write \(path): \(detail); check the folder exists and is writable"
        }
    }
}

/// Logging flags shared by every long-running command.
struct LogOptions: ParsableArguments {
    @Option(help: "Log level: trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"

    @Option(help: "Log line format: text (human-readable) or json (one JSON object per line: time, level, module, message, metadata; for cluster log pipelines).")
    var logFormat: String = "text"

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical; got \(logLevel)")
        }
        guard ["text", "json"].contains(logFormat) else {
            throw ValidationError("--log-format must be text or json, got \(logFormat)")
        }
    }

    /// Sends swift-log output to stderr at the chosen level (once per process) and returns a logger.
    func bootstrap(label: String) -> Logger {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingBootstrap.once(level: level, json: logFormat == "json")
        var logger = Logger(label: label)
        logger.logLevel = level
        return logger
    }
}

/// swift-log may be bootstrapped only once per process.
enum LoggingBootstrap {
    nonisolated(unsafe) private static var done = false
    private static let lock = NSLock()

    static func once(level: Logger.Level, json: Bool = false) {
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
}

/// Appends one JSON object per line, keys in the order given.
final class JSONLinesFile {
    private let handle: FileHandle
    let path: String

    /// Creates (truncates) the file.
    init(path: String) throws {
        self.path = path
        guard FileManager.default.createFile(atPath: path, contents: nil),
              let h = FileHandle(forWritingAtPath: path) else {
            throw CLIError.io(path: path, detail: "cannot create the file")
        }
        handle = h
    }

    deinit { try? handle.close() }

    /// Writes `fields` as one JSON object line.
    func append(_ fields: KeyValuePairs<String, Scalar>) throws {
        let body = fields.map { "\"\($0.key)\":\(jsonValue($0.value))" }.joined(separator: ",")
        do { try handle.write(contentsOf: Data(("{" + body + "}\n").utf8)) } catch {
            throw CLIError.io(path: path, detail: "\(error)")
        }
    }
}

/// A scalar as a JSON value (non-finite numbers become null).
func jsonValue(_ s: Scalar) -> String {
    switch s {
    case .double(let d): return d.isFinite ? "\(d)" : "null"
    case .int(let i): return "\(i)"
    case .bool(let b): return b ? "true" : "false"
    case .string(let str):
        let escaped = str.unicodeScalars.map { c -> String in
            switch c {
            case "\"": return "\\\""
            case "\\": return "\\\\"
            case "\n": return "\\n"
            default: return c.value < 0x20 ? String(format: "\\u%04x", c.value) : String(c)
            }
        }.joined()
        return "\"\(escaped)\""
    case .bytes(let b): return "\(b.count)"
    }
}

/// Where the privacy ledger goes when --ledger-dir is not given: beside the data when that
/// folder is writable, else ./flwr-privacy.
func defaultLedgerDirectory(dataDir: String?) -> String {
    if let d = dataDir, FileManager.default.isWritableFile(atPath: d) { return d }
    return "flwr-privacy"
}

/// A one-line progress bar on a terminal; silent otherwise (the caller logs per epoch).
final class ProgressBar {
    let enabled: Bool
    private var lastDraw = ContinuousClock.now - .seconds(1)
    private var drawn = false

    init(enabled: Bool) { self.enabled = enabled }

    func update(epoch: Int, of epochs: Int, step: Int, of steps: Int, images: Int, seconds: Double, loss: Double) {
        guard enabled else { return }
        let now = ContinuousClock.now
        guard step == steps || now - lastDraw > .milliseconds(100) else { return }
        lastDraw = now
        let width = 30
        let filled = steps > 0 ? min(width, step * width / steps) : 0
        let bar = String(repeating: "=", count: filled) + (filled < width ? ">" : "") + String(repeating: " ", count: max(0, width - filled - 1))
        let rate = String(format: "%3d%%  %6.0f img/s  loss %.4f", steps > 0 ? step * 100 / steps : 0,
                          Double(images) / max(seconds, 1e-9), loss)
        let line = "\repoch \(epoch)/\(epochs) [\(bar)] \(rate)"
        FileHandle.standardError.write(Data(line.utf8))
        drawn = true
    }

    func finish() {
        guard enabled, drawn else { return }
        FileHandle.standardError.write(Data("\n".utf8))
        drawn = false
    }
}
