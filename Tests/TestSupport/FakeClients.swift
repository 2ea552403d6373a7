// Client handles for tests of the round loop and the strategies, driven in memory.
import FlowerCore
import Synchronization

/// An in-memory client the server drives directly: its answers come from closures, it records
/// what it was sent, counts bytes like a transport would,.
public final class FakeClient: ClientProxy, TrafficCounting {
    public struct Recorded {
        public var fits: [FitIns] = []
        public var evaluates: [EvaluateIns] = []
        public var finishes: [(rounds: Int, reason: String)] = []
        public var bytesIn: UInt64 = 0
        public var bytesOut: UInt64 = 0
    }

    public let id: String
    public let partition: Int?
    private let onFit: @Sendable (FitIns, Int) async throws -> FitRes
    private let onEvaluate: @Sendable (EvaluateIns) async throws -> EvaluateRes
    private let state = Mutex(Recorded())

    /// A client whose `fit` answers `onFit(ins, callIndex)` (callIndex counts from 0).
    public init(_ id: String, partition: Int? = nil,
         onFit: @escaping @Sendable (FitIns, Int) async throws -> FitRes,
         onEvaluate: @escaping @Sendable (EvaluateIns) async throws -> EvaluateRes = { ins in
             EvaluateRes(round: ins.round, loss: 1, numExamples: 1, metrics: ["accuracy": .double(0.5)])
         }) {
        self.id = id
        self.partition = partition
        self.onFit = onFit
        self.onEvaluate = onEvaluate
    }

    public var recorded: Recorded { state.withLock { $0 } }
    public var bytesIn: UInt64 { state.withLock { $0.bytesIn } }
    public var bytesOut: UInt64 { state.withLock { $0.bytesOut } }

    public func getParameters(_ ins: GetParametersIns, timeout: Duration) async throws -> ParametersRes {
        throw TestFailure("no parameters")
    }

    public func fit(_ ins: FitIns, timeout: Duration) async throws -> FitRes {
        let index = state.withLock { s in
            s.fits.append(ins)
            s.bytesOut += UInt64(4 * ins.parameters.count)
            return s.fits.count - 1
        }
        let res = try await onFit(ins, index)
        state.withLock { $0.bytesIn += UInt64(4 * res.parameters.count) }
        return res
    }

    public func evaluate(_ ins: EvaluateIns, timeout: Duration) async throws -> EvaluateRes {
        state.withLock { $0.evaluates.append(ins) }
        return try await onEvaluate(ins)
    }

    public func finish(roundsCompleted: Int, reason: String) async {
        state.withLock { $0.finishes.append((roundsCompleted, reason)) }
    }

    public func reconnect(seconds: Int, reason: String) async {}
}

public struct TestFailure: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}

/// A client handle that is only an identity: enough for sampling and aggregation, which never
/// call it (every call throws).
public final class StubClient: ClientProxy {
    public let id: String
    public let partition: Int? = nil
    public init(_ id: String) { self.id = id }
    public func getParameters(_ ins: GetParametersIns, timeout: Duration) async throws -> ParametersRes { throw TestFailure("stub") }
    public func fit(_ ins: FitIns, timeout: Duration) async throws -> FitRes { throw TestFailure("stub") }
    public func evaluate(_ ins: EvaluateIns, timeout: Duration) async throws -> EvaluateRes { throw TestFailure("stub") }
    public func finish(roundsCompleted: Int, reason: String) async {}
    public func reconnect(seconds: Int, reason: String) async {}
}
