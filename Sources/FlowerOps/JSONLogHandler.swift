// `--log-format json`: one JSON object per log line for cluster log pipelines (Loki, Elastic,
// Cloud Logging): {"time", "level", "module", "message", "metadata", "source"}.
import FlowerBase
import Foundation
import Logging
import Synchronization

/// A swift-log handler writing one JSON object per line to a file handle (stderr by default).
public struct JSONLogHandler: LogHandler {
    /// The logger's label, written as `module`.
    public let label: String
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    private let sink: JSONLogSink

    /// A handler for `label` writing to standard error.
    public init(label: String, sink: JSONLogSink = .standardError) {
        self.label = label
        self.sink = sink
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let explicit = event.metadata { merged.merge(explicit) { _, new in new } }
        if let error = event.error { merged["error"] = "\(error)" }
        sink.write(Self.line(time: Date(), level: event.level, module: label, message: "\(event.message)",
                             metadata: merged, source: event.source))
    }

    /// The JSON line (without newline) for one record; keys in a fixed order.
    public static func line(time: Date, level: Logger.Level, module: String, message: String,
                            metadata: Logger.Metadata, source: String) -> String {
        var members: [(key: String, json: String)] = [
            ("time", JSONText.string(timestamp(time))), ("level", JSONText.string(level.rawValue)),
            ("module", JSONText.string(module)), ("message", JSONText.string(message)),
        ]
        if !metadata.isEmpty { members.append(("metadata", json(.dictionary(metadata)))) }
        members.append(("source", JSONText.string(source)))
        return JSONText.object(members)
    }

    /// RFC 3339 UTC with milliseconds, e.g. 2026-11-30T12:01:02.345Z.
    static func timestamp(_ date: Date) -> String {
        let ms = Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
        var t = time_t(ms / 1000)
        var tm = tm()
        gmtime_r(&t, &tm)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", Int(tm.tm_year) + 1900, Int(tm.tm_mon) + 1,
                      Int(tm.tm_mday), Int(tm.tm_hour), Int(tm.tm_min), Int(tm.tm_sec), Int(ms % 1000))
    }

    static func json(_ v: Logger.Metadata.Value) -> String {
        switch v {
        case .string(let s): return JSONText.string(s)
        case .stringConvertible(let c): return JSONText.string(c.description)
        case .array(let a): return JSONText.array(a.map(json))
        case .dictionary(let d): return JSONText.object(d.keys.sorted().map { ($0, json(d[$0]!)) })
        }
    }
}

/// Where JSON log lines go; whole lines are written under a lock so concurrent loggers never
/// interleave within a line.
public final class JSONLogSink: Sendable {
    private let handle: Mutex<FileHandle>

    /// A sink writing to `handle`.
    public init(handle: FileHandle) { self.handle = Mutex(handle) }

    /// Standard error.
    public static let standardError = JSONLogSink(handle: FileHandle.standardError)

    func write(_ line: String) {
        let data = Data((line + "\n").utf8)
        handle.withLock { h in try? h.write(contentsOf: data) }
    }
}
