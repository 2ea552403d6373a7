// `--tensorboard-dir`: the run's history as a TensorBoard event file
// (DIR/events.out.tfevents.<seconds>.<host>.flwr), one Event per round (or epoch) holding the
// scalars accuracy, loss, round_seconds and epsilon. Event and Summary are TensorBoard's own
// protobufs (proto/tensorboard/tensorboard.proto, encoded by libprotobuf-c), framed as TFRecords.
import CTensorBoardProto
import FlowerCore
import Foundation
import Logging
import Synchronization

/// Why an event file could not be written.
public enum TensorBoardError: Error, CustomStringConvertible {
    case io(path: String, detail: String)

    public var description: String {
        switch self {
        case .io(let path, let detail):
            return "cannot write TensorBoard events to \(path): \(detail); check --tensorboard-dir exists and is writable"
        }
    }
}

/// Appends scalar summaries to one TensorBoard event file.
public final class TensorBoardWriter: ServerObserver, Sendable {
    /// The event file's path.
    public let path: String
    private let handle: Mutex<FileHandle>
    private let logger: Logger
    private let failed = Mutex(false)

    /// Creates `directory` if needed and a new event file in it, starting with the file-version event.
    public init(directory: String, logger: Logger, now: Date = Date()) throws {
        self.logger = logger
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw TensorBoardError.io(path: directory, detail: "\(error)")
        }
        let host = ProcessInfo.processInfo.hostName.replacingOccurrences(of: "/", with: "_")
        let name = "events.out.tfevents.\(Int64(now.timeIntervalSince1970)).\(host).\(getpid()).flwr"
        path = (directory as NSString).appendingPathComponent(name)
        guard FileManager.default.createFile(atPath: path, contents: nil),
              let h = FileHandle(forWritingAtPath: path) else {
            throw TensorBoardError.io(path: path, detail: "cannot create the file")
        }
        handle = Mutex(h)
        try append(TFRecord.frame(Self.encodeEvent(wallTime: now.timeIntervalSince1970, step: 0, fileVersion: "brain.Event:2")))
    }

    deinit { handle.withLock { try? $0.close() } }

    /// Writes one event at `step` with `scalars` (tag, value); non-finite values are left out.
    public func add(step: Int, scalars: [(tag: String, value: Double)], wallTime: Date = Date()) throws {
        let finite = scalars.filter { $0.value.isFinite }
        guard !finite.isEmpty else { return }
        try append(TFRecord.frame(Self.encodeEvent(wallTime: wallTime.timeIntervalSince1970, step: Int64(step),
                                                   scalars: finite.map { ($0.tag, Float($0.value)) })))
    }

    /// The scalars flwr writes for one round: accuracy, loss, round_seconds, epsilon (data-level ε)
    /// epsilon_dp_fedavg (DP-FedAvg's ε), epsilon_dp_sgd (the worst site's DP-SGD ε) and
    /// epsilon_dp_sgd/SITE (each site's), each when the round has it.
    public static func scalars(of record: RoundRecord) -> [(tag: String, value: Double)] {
        var out: [(tag: String, value: Double)] = []
        if let a = record.accuracy { out.append(("accuracy", a)) }
        if let l = record.loss { out.append(("loss", l)) }
        out.append(("round_seconds", record.seconds))
        // The virtual clock (flwr simulate --client-speed/--mode async): accuracy against virtual
        // time is TensorBoard's "relative" axis only in wall time, so the clock is a scalar too.
        if let t = record.virtualTime { out.append(("virtual_time", t)) }
        if let s = record.staleness { out.append(("staleness", s)) }
        for (mechanism, e) in RoundEpsilon.values(of: record) {
            out.append((mechanism == "data" ? "epsilon" : "epsilon_\(mechanism)", e))
        }
        for (site, e) in (record.siteEpsilon ?? [:]).sorted(by: { $0.key < $1.key }) { out.append(("epsilon_dp_sgd/\(site)", e)) }
        return out
    }

    public func roundCompleted(_ record: RoundRecord, of numRounds: Int) {
        do { try add(step: record.round, scalars: Self.scalars(of: record)) } catch {
            if failed.withLock({ f in defer { f = true }; return !f }) { logger.warning("\(error)") }
        }
    }

    private func append(_ bytes: [UInt8]) throws {
        do {
            try handle.withLock { h in
                try h.write(contentsOf: Data(bytes))
                try h.synchronize()
            }
        } catch {
            throw TensorBoardError.io(path: path, detail: "\(error)")
        }
    }

    // MARK: protobuf (libprotobuf-c)

    /// The serialized `tensorboard.Event`: the file version, or a summary of scalar values.
    static func encodeEvent(wallTime: Double, step: Int64, fileVersion: String? = nil,
                            scalars: [(String, Float)] = []) -> [UInt8] {
        var event = Tensorboard__Event()
        tensorboard__event__init(&event)
        event.wall_time = wallTime
        event.step = step
        if let fileVersion {
            return fileVersion.withCString { cs in
                event.what_case = TENSORBOARD__EVENT__WHAT_FILE_VERSION
                event.file_version = UnsafeMutablePointer(mutating: cs)
                return pack(&event)
            }
        }
        let n = scalars.count
        let tags = scalars.map { strdup($0.0) }
        defer { tags.forEach { free($0) } }
        let values = UnsafeMutablePointer<Tensorboard__Summary__Value>.allocate(capacity: max(n, 1))
        let pointers = UnsafeMutablePointer<UnsafeMutablePointer<Tensorboard__Summary__Value>?>.allocate(capacity: max(n, 1))
        defer {
            values.deallocate()
            pointers.deallocate()
        }
        for (i, s) in scalars.enumerated() {
            var v = Tensorboard__Summary__Value()
            tensorboard__summary__value__init(&v)
            v.tag = tags[i]
            v.value_case = TENSORBOARD__SUMMARY__VALUE__VALUE_SIMPLE_VALUE
            v.simple_value = s.1
            (values + i).initialize(to: v)
            pointers[i] = values + i
        }
        var summary = Tensorboard__Summary()
        tensorboard__summary__init(&summary)
        summary.n_value = n
        summary.value = pointers
        return withUnsafeMutablePointer(to: &summary) { sp in
            event.what_case = TENSORBOARD__EVENT__WHAT_SUMMARY
            event.summary = sp
            return pack(&event)
        }
    }

    private static func pack(_ event: inout Tensorboard__Event) -> [UInt8] {
        let size = tensorboard__event__get_packed_size(&event)
        var out = [UInt8](repeating: 0, count: size)
        _ = out.withUnsafeMutableBufferPointer { tensorboard__event__pack(&event, $0.baseAddress) }
        return out
    }
}
