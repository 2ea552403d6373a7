import CIFARLoader
import CNNModel
import Dispatch
import FlowerCore
import Foundation
import Logging
import Synchronization

/// How a long-running command ended.
enum RunOutcome<T: Sendable>: Sendable {
    case finished(T)
    case failed(any Error)
    case signalled(String)
}

/// An error whose description is the whole message the user sees (exit code 1).
struct ExitMessage: Error, CustomStringConvertible {
    let error: any Error
    var description: String { "\(error)" }
}

/// Which termination signal arrived, if any.
private final class SignalFlag: Sendable {
    let name = Mutex<String?>(nil)
}

/// Runs `body`, cancelling it on SIGTERM or SIGINT (a pod being stopped, Ctrl-C).
func runUntilSignal<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async -> RunOutcome<T> {
    let task = Task { try await body() }
    let flag = SignalFlag()
    let sources = watchSignals { name in
        flag.name.withLock { $0 = $0 ?? name }
        task.cancel()
    }
    defer { sources.forEach { $0.cancel() } }
    let result = await task.result
    if let name = flag.name.withLock({ $0 }) { return .signalled(name) }
    switch result {
    case .success(let v): return .finished(v)
    case .failure(let e): return .failed(e)
    }
}

/// Calls `handler` with the signal's name on SIGTERM or SIGINT instead of dying, until the
/// returned subscription is cancelled.
func watchSignals(_ handler: @escaping @Sendable (String) -> Void) -> [SignalSubscription] {
    [SignalWatcher.shared.subscribe(handler)]
}

/// One subscription to SIGTERM/SIGINT.
struct SignalSubscription: Sendable {
    let id: Int
    func cancel() { SignalWatcher.shared.unsubscribe(id) }
}

/// The process's SIGTERM/SIGINT sources, created once and never cancelled. (Cancelling a
/// dispatch signal source and creating a new one for the same signal lost the signal: `--linger`
/// after training ignored SIGTERM until the pod was killed.) Handlers subscribe and unsubscribe.
final class SignalWatcher: Sendable {
    static let shared = SignalWatcher()
    private let handlers = Mutex<(next: Int, byID: [Int: @Sendable (String) -> Void])>((0, [:]))
    /// Kept only so the sources live as long as the process; written once in init, never mutated.
    private nonisolated(unsafe) let sources: [any DispatchSourceSignal]

    private init() {
        sources = [(SIGTERM, "SIGTERM"), (SIGINT, "SIGINT")].map { sig, name in
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { SignalWatcher.shared.deliver(name) }
            source.resume()
            return source
        }
    }

    func subscribe(_ handler: @escaping @Sendable (String) -> Void) -> SignalSubscription {
        let id = handlers.withLock { h -> Int in
            h.next += 1
            h.byID[h.next] = handler
            return h.next
        }
        return SignalSubscription(id: id)
    }

    private func deliver(_ name: String) {
        for h in handlers.withLock({ Array($0.byID.values) }) { h(name) }
    }

    func unsubscribe(_ id: Int) {
        handlers.withLock { _ = $0.byID.removeValue(forKey: id) }
    }
}

/// After training: answer every client that connects with Finish, until SIGTERM/SIGINT.
func lingerUntilSignal(manager: InMemoryClientManager, rounds: Int, logger: Logger) async {
    logger.info("training complete; lingering (late clients get Finish) until SIGTERM")
    let stop = SignalFlag()
    let sources = watchSignals { name in stop.name.withLock { $0 = $0 ?? name } }
    defer { sources.forEach { $0.cancel() } }
    while stop.name.withLock({ $0 }) == nil {
        for client in manager.all() {
            await client.finish(roundsCompleted: rounds, reason: "training already finished after \(rounds) rounds")
            manager.unregister(client)
        }
        try? await Task.sleep(for: .milliseconds(500))
    }
    logger.notice("stopping on \(stop.name.withLock { $0 } ?? "a signal") after lingering")
}

/// Central evaluation on the server's test set, and the seeded initial model.
struct CentralEvaluation: Sendable {
    let initialParameters: Parameters
    let evaluateFn: (@Sendable (Int, Parameters) async throws -> (loss: Double, metrics: Metrics)?)?

    /// nil for `--dataset none`.
    static func load(dataset: String, dataDir: String?, maxTestExamples: Int?, threads: Int, seed: UInt64,
                     logger: Logger) throws -> CentralEvaluation? {
        guard dataset != "none" else { return nil }
        let split = try loadDataset(try DatasetKind.parse(dataset), dataDir: dataDir)
        var test = split.test
        if let m = maxTestExamples, m < test.count { test = test.subset(Array(0 ..< m)) }
        return try CentralEvaluation(test: test, threads: threads, seed: seed, logger: logger)
    }

    /// Evaluates on `test` (no evaluation when it is empty) with a model seeded by `seed`. The test
    /// set is cut into `threads` contiguous shards evaluated at once by single-threaded models
    /// (no synchronisation inside a forward pass, which at inference batch sizes costs more
    /// than it splits); losses and hits are summed over the shards.
    init(test: Dataset, threads: Int, seed: UInt64, logger: Logger) throws {
        let shape = (c: test.channels, h: test.height, w: test.width, k: test.classes)
        let shards = max(1, min(threads, test.count))
        let pool = ModelPool(size: shards) { try CNN(channels: shape.c, height: shape.h, width: shape.w, classes: shape.k,
                                                     seed: seed, threads: 1) }
        initialParameters = try pool.withModelNow { model in try Parameters(shapes: model.layout, values: model.parameters()) }
        guard test.count > 0 else {
            logger.warning("\(test.name) has no test images: no central evaluation")
            evaluateFn = nil
            return
        }
        logger.info("central evaluation on \(test.count) test images of \(test.name)")
        let images = modelInput(test)
        let labels = test.labels
        let imageSize = shape.c * shape.h * shape.w
        let bounds = (0 ... shards).map { $0 * test.count / shards }
        evaluateFn = { _, parameters in
            let parts = try await withThrowingTaskGroup(of: EvalResult.self) { group in
                for s in 0 ..< shards {
                    group.addTask {
                        try await pool.withModel { model in
                            try model.setParameters(parameters.values)
                            let (lo, hi) = (bounds[s], bounds[s + 1])
                            return try images.withUnsafeBufferPointer { ib in
                                try labels.withUnsafeBufferPointer { lb in
                                    try model.evaluate(images: UnsafeBufferPointer(rebasing: ib[lo * imageSize ..< hi * imageSize]),
                                                       labels: UnsafeBufferPointer(rebasing: lb[lo ..< hi]))
                                }
                            }
                        }
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let n = Double(parts.reduce(0) { $0 + $1.examples })
            let loss = parts.reduce(0.0) { $0 + $1.loss * Double($1.examples) } / n
            let accuracy = parts.reduce(0.0) { $0 + $1.accuracy * Double($1.examples) } / n
            return (loss, ["accuracy": .double(accuracy)])
        }
    }
}

/// Writes parameters as numpy .npz: one float32 array per tensor, named like `conv1.weight`.
func writeModel(_ parameters: Parameters, to path: String) throws {
    let arrays = parameters.layout.map { spec in
        NPZArray(name: spec.name, shape: spec.shape,
                 floats: Array(parameters.values[spec.offset ..< spec.offset + spec.count]))
    }
    try NPZ.write(arrays, to: path)
}
