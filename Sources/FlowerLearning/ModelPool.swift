import CNNModel
import FlowerCore
import Synchronization

/// A fixed set of model instances shared by the clients of one process (`flwr simulate`), so that
/// at most `size` clients train at once: the machine's cores are used and not oversubscribed, and
/// memory holds `size` model workspaces however many clients there are.
///
/// When clients wait, a freed model goes to the one with the most work (longest job first, ties in
/// arrival order): with non-IID partitions of very different sizes this keeps every slot busy
/// until the end of the round instead of leaving a core idle while one large client finishes.
public final class ModelPool: Sendable {
    private struct Waiter {
        let work: Int
        let continuation: CheckedContinuation<ModelBox, Never>
    }
    private struct State {
        var idle: [ModelBox] = []
        var created = 0
        var waiters: [Waiter] = []
        var watchers = ChangeWatchers<Int>()

        /// Removes and returns the waiter with the most work (the earliest of equals).
        mutating func takeLargestWaiter() -> Waiter? {
            guard var best = waiters.indices.first else { return nil }
            for i in waiters.indices where waiters[i].work > waiters[best].work { best = i }
            let w = waiters.remove(at: best)
            watchers.send(waiters.count)
            return w
        }
    }
    private let state = Mutex(State())
    private let size: Int
    /// Nanoseconds the models have spent running `withModel` bodies, summed over the models.
    private let busy = Atomic<UInt64>(0)
    private let make: @Sendable () throws -> any Model

    /// A pool of at most `size` models built on demand by `make`.
    public init(size: Int, make: @escaping @Sendable () throws -> any Model) {
        self.size = max(1, size)
        self.make = make
    }

    /// Runs `body` with exclusive use of one model, waiting for a free one if all are busy;
    /// `work` (e.g. examples × epochs) orders the waiters, largest first.
    /// The body runs on the model's own compute thread (ComputeThread), never on Swift's
    /// cooperative pool or an event loop, so timers and I/O stay on time while the cores train.
    public func withModel<R: Sendable>(work: Int = 0, _ body: @escaping @Sendable (any Model) throws -> R) async throws -> R {
        let box = try await acquire(work: work)
        defer { release(box) }
        return try await box.thread.run { [self] in
            let start = ContinuousClock.now
            defer {
                let d = (ContinuousClock.now - start).components
                self.busy.add(UInt64(max(0, d.seconds)) &* 1_000_000_000 &+ UInt64(max(0, d.attoseconds / 1_000_000_000)),
                         ordering: .relaxed)
            }
            return try body(box.model)
        }
    }

    /// Seconds the models have spent running `withModel` bodies (training, evaluation), summed
    /// over the models: the compute a simulation cannot go below, whatever its own overhead.
    public var busySeconds: Double { Double(busy.load(ordering: .relaxed)) / 1e9 }

    /// The number of models the pool holds at most (clients computing at the same time).
    public var capacity: Int { size }

    /// A model for exclusive use, waiting (largest `work` first) while all are busy.
    public func acquire(work: Int) async throws -> ModelBox {
        if let box = try acquireNow() { return box }
        return await withCheckedContinuation { cont in
            let ready: ModelBox? = state.withLock { s in
                if let b = s.idle.popLast() { return b }
                s.waiters.append(Waiter(work: work, continuation: cont))
                s.watchers.send(s.waiters.count)
                return nil
            }
            if let ready { cont.resume(returning: ready) }
        }
    }

    /// An idle model, else a new one if the pool has room, else nil (all `size` models busy).
    private func acquireNow() throws -> ModelBox? {
        enum Step { case got(ModelBox), build, full }
        let step: Step = state.withLock { s in
            if let b = s.idle.popLast() { return .got(b) }
            if s.created < size { s.created += 1; return .build }
            return .full
        }
        switch step {
        case .got(let b): return b
        case .full: return nil
        case .build:
            do { return ModelBox(model: try make()) } catch {
                state.withLock { $0.created -= 1 }
                throw error
            }
        }
    }

    /// Runs `body` on a model from a synchronous context (setup code): a pooled one if one is
    /// free or can be built, else a temporary model outside the pool.
    public func withModelNow<R>(_ body: (any Model) throws -> R) throws -> R {
        guard let box = try acquireNow() else { return try body(try make()) }
        defer { release(box) }
        return try body(box.model)
    }

    /// Tasks waiting for a model now.
    public var waitingCount: Int { state.withLock { $0.waiters.count } }

    /// `waitingCount` now, then after each change: a test waits on it for a task to queue.
    package func waitingCounts() -> AsyncStream<Int> {
        ChangeWatchers.stream(add: { c in state.withLock { s in let n = s.waiters.count; return s.watchers.add(c, current: n) } },
                              remove: { [weak self] id in self?.state.withLock { $0.watchers.remove(id) } })
    }

    public func release(_ box: ModelBox) {
        let waiter: CheckedContinuation<ModelBox, Never>? = state.withLock { s in
            if s.waiters.isEmpty { s.idle.append(box); return nil }
            return s.takeLargestWaiter()?.continuation
        }
        waiter?.resume(returning: box)
    }
}

/// Moves a model between tasks (the pool guarantees one user at a time), with the thread its
/// training and evaluation run on.
public final class ModelBox: @unchecked Sendable {
    /// The model.
    public let model: any Model
    /// The dedicated thread this model's work runs on.
    public let thread = ComputeThread(name: "flwr-compute")
    init(model: any Model) { self.model = model }
}
