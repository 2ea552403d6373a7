import FlowerCore
import Logging
import Synchronization

/// An in-memory client the server drives directly: its answers come from closures, it records
/// what it was sent, counts bytes like a transport would,.
final class FakeClient: ClientProxy, TrafficCounting {
    struct Recorded {
        var fits: [FitIns] = []
        var evaluates: [EvaluateIns] = []
        var finishes: [(rounds: Int, reason: String)] = []
        var bytesIn: UInt64 = 0
        var bytesOut: UInt64 = 0
    }

    let id: String
    let partition: Int?
    private let onFit: @Sendable (FitIns, Int) async throws -> FitRes
    private let onEvaluate: @Sendable (EvaluateIns) async throws -> EvaluateRes
    private let state = Mutex(Recorded())

    /// A client whose `fit` answers `onFit(ins, callIndex)` (callIndex counts from 0).
    init(_ id: String, partition: Int? = nil,
         onFit: @escaping @Sendable (FitIns, Int) async throws -> FitRes,
         onEvaluate: @escaping @Sendable (EvaluateIns) async throws -> EvaluateRes = { ins in
             EvaluateRes(round: ins.round, loss: 1, numExamples: 1, metrics: ["accuracy": .double(0.5)])
         }) {
        self.id = id
        self.partition = partition
        self.onFit = onFit
        self.onEvaluate = onEvaluate
    }

    var recorded: Recorded { state.withLock { $0 } }
    var bytesIn: UInt64 { state.withLock { $0.bytesIn } }
    var bytesOut: UInt64 { state.withLock { $0.bytesOut } }

    func getParameters(_ ins: GetParametersIns, timeout: Duration) async throws -> ParametersRes {
        throw TestFailure("no parameters")
    }

    func fit(_ ins: FitIns, timeout: Duration) async throws -> FitRes {
        let index = state.withLock { s in
            s.fits.append(ins)
            s.bytesOut += UInt64(4 * ins.parameters.count)
            return s.fits.count - 1
        }
        let res = try await onFit(ins, index)
        state.withLock { $0.bytesIn += UInt64(4 * res.parameters.count) }
        return res
    }

    func evaluate(_ ins: EvaluateIns, timeout: Duration) async throws -> EvaluateRes {
        state.withLock { $0.evaluates.append(ins) }
        return try await onEvaluate(ins)
    }

    func finish(roundsCompleted: Int, reason: String) async {
        state.withLock { $0.finishes.append((roundsCompleted, reason)) }
    }

    func reconnect(seconds: Int, reason: String) async {}
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// A client that trains by adding `delta` to the global model and reports `numExamples`.
func adder(_ id: String, delta: [Float], numExamples: Int) -> FakeClient {
    FakeClient(id, onFit: { ins, _ in
        var p = ins.parameters
        for i in p.values.indices { p.values[i] += delta[i] }
        return FitRes(round: ins.round, parameters: p, numExamples: numExamples, metrics: ["loss": .double(1)])
    })
}

/// Three float values as tensors `w` [2] and `b` [1].
func model(_ v: [Float]) throws -> Parameters {
    try Parameters(shapes: [("w", [2]), ("b", [1])], values: v)
}

/// Collects log lines so tests can check that reasons are logged.
final class LogStore: Sendable {
    private let lines = Mutex<[(Logger.Level, String)]>([])
    func append(_ level: Logger.Level, _ message: String) { lines.withLock { $0.append((level, message)) } }
    var all: [(Logger.Level, String)] { lines.withLock { $0 } }
    func contains(_ s: String) -> Bool { all.contains { $0.1.contains(s) } }

    var logger: Logger {
        Logger(label: "test") { _ in CollectingLogHandler(store: self) }
    }
}

struct CollectingLogHandler: LogHandler {
    let store: LogStore
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?
    var logLevel: Logger.Level = .trace

    func log(event: LogEvent) { store.append(event.level, event.message.description) }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
}

/// A fresh empty directory under the system's temporary directory.
func temporaryDirectory(_ name: String) throws -> String {
    let path = NSTemporaryDirectory() + "flwr-core-tests-\(name)-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

import Foundation
