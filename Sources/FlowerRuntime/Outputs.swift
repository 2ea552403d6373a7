// What the runtimes write besides logs: the model as numpy .npz, JSON lines of metrics, the
// privacy ledger's default place, and the peak memory figure the summaries print.
import CIFARLoader
import FlowerCore
import Foundation

/// Failures of the runtimes' own glue, each saying what to do.
public enum RuntimeError: Error, CustomStringConvertible, Equatable {
    case emptyData(String)
    case io(path: String, detail: String)
    /// A setting out of range; the text names the flag and what it accepts.
    case invalidSetting(String)

    public var description: String {
        switch self {
        case .invalidSetting(let s): return s
        case .emptyData(let s): return "\(s); check --dataset and --data-dir"
        case .io(let path, let detail): return "cannot write \(path): \(detail); check the folder exists and is writable"
        }
    }
}

/// Writes parameters as numpy .npz: one float32 array per tensor, named like `conv1.weight`.
public func writeModel(_ parameters: Parameters, to path: String) throws {
    let arrays = parameters.layout.map { spec in
        NPZArray(name: spec.name, shape: spec.shape,
                 floats: Array(parameters.values[spec.offset ..< spec.offset + spec.count]))
    }
    try NPZ.write(arrays, to: path)
}

/// One JSON object per line, written with Foundation's JSONSerialization (keys sorted, so lines
/// diff cleanly; non-finite numbers become null).
public final class JSONLinesFile {
    private let handle: FileHandle
    public let path: String

    /// Creates (truncates) the file.
    public init(path: String) throws {
        self.path = path
        guard FileManager.default.createFile(atPath: path, contents: nil),
              let h = FileHandle(forWritingAtPath: path) else {
            throw RuntimeError.io(path: path, detail: "cannot create the file")
        }
        handle = h
    }

    deinit { try? handle.close() }

    /// Writes `fields` as one JSON object line.
    public func append(_ fields: [String: Scalar]) throws {
        do {
            try handle.write(contentsOf: Data((JSONLines.line(fields.mapValues(JSONLines.value)) + "\n").utf8))
        } catch {
            throw RuntimeError.io(path: path, detail: "\(error)")
        }
    }
}

/// The one JSON-lines helper of the runtimes and benchmarks.
public enum JSONLines {
    /// `object` as one line of JSON, keys sorted.
    public static func line(_ object: [String: Any]) -> String {
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }

    /// A scalar as a JSONSerialization value (non-finite numbers become null, bytes their length).
    public static func value(_ s: Scalar) -> Any {
        switch s {
        case .double(let d): return d.isFinite ? d : NSNull()
        case .int(let i): return i
        case .bool(let b): return b
        case .string(let str): return str
        case .bytes(let b): return b.count
        }
    }
}

/// Where the privacy ledger goes when --ledger-dir is not given: beside the data when that
/// folder is writable, else ./flwr-privacy.
public func defaultLedgerDirectory(dataDir: String?) -> String {
    if let d = dataDir, FileManager.default.isWritableFile(atPath: d) { return d }
    return "flwr-privacy"
}

/// The process's peak resident memory in MB.
public func peakRSSMegabytes() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_maxrss) / 1024
}

