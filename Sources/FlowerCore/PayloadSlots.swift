// Bounded memory on the server: at most K large received answers (FitRes, ParametersRes, ...)
// are held undecoded at once over all connections of both transports. A connection whose next
// answer is large waits for a slot without reading further (the native wire's `ReadGate` holds
// back reads; the Flower port's stream reader stops pulling messages), so flow control stops its
// sender. A slot is released when the answer it carried has been decoded into `Parameters` (or
// its connection closes).
//
// The pool knows no transport: a waiter is a closure the pool calls when a slot frees (the native
// wire hops onto its channel's event loop there), or an async caller suspended in `acquire()`.
import Synchronization

/// One granted slot; released exactly once (explicitly, or when dropped).
package final class PayloadSlot: Sendable {
    private let pool: PayloadSlots
    private let released = Atomic<Bool>(false)

    package init(pool: PayloadSlots) { self.pool = pool }

    /// Gives the slot back (idempotent).
    package func release() {
        guard !released.exchange(true, ordering: .acquiringAndReleasing) else { return }
        pool.free()
    }

    deinit { release() }
}

/// The K slots shared by all connections of one server (both of its listeners).
public final class PayloadSlots: Sendable {
    /// Payloads of at least this many bytes need a slot; smaller ones are read freely.
    public static let threshold = 64 << 10

    private struct Waiter {
        let id: UInt64
        /// Called with the slot, or with nil when an async waiter was cancelled.
        let grant: @Sendable (PayloadSlot?) -> Void
    }

    private struct State {
        var free: Int
        var waiters: [Waiter] = []
        var head = 0
        var peakHeld = 0
        var nextID: UInt64 = 0
        var watchers = ChangeWatchers<Int>()

        var waiting: Int { waiters.count - head }
    }

    /// Number of slots (K).
    public let capacity: Int
    private let state: Mutex<State>

    /// K slots (at least 1).
    public init(capacity: Int) {
        self.capacity = max(1, capacity)
        state = Mutex(State(free: max(1, capacity)))
    }

    /// Most slots held at once so far (for tests and benchmarks).
    public var peakHeld: Int { state.withLock { $0.peakHeld } }

    /// Slots held now.
    public var held: Int { state.withLock { capacity - $0.free } }

    /// Connections waiting for a slot now.
    public var waiting: Int { state.withLock { $0.waiting } }

    /// `waiting` now, then after each change: a test waits on it for a connection to queue or
    /// leave the queue.
    package func waitingCounts() -> AsyncStream<Int> {
        ChangeWatchers.stream(add: { c in state.withLock { s in let n = s.waiting; return s.watchers.add(c, current: n) } },
                              remove: { [weak self] id in self?.state.withLock { $0.watchers.remove(id) } })
    }

    /// A waiter's handle, for `cancel(waiter:)`.
    package struct WaiterID: Sendable, Equatable {
        fileprivate let value: UInt64
    }

    /// A slot now, or nil after queueing `grant` to be called (on the thread that frees a slot,
    /// outside the pool's lock) when one frees, first come first served. `queued` receives the
    /// waiter's handle before `grant` can run.
    package func acquire(queued: (WaiterID) -> Void = { _ in },
                         _ grant: @escaping @Sendable (PayloadSlot) -> Void) -> PayloadSlot? {
        enqueue(queued: queued) { slot in if let slot { grant(slot) } }
    }

    private func enqueue(queued: (WaiterID) -> Void, _ grant: @escaping @Sendable (PayloadSlot?) -> Void) -> PayloadSlot? {
        let now: Bool = state.withLock { s in
            if s.free > 0 {
                s.free -= 1
                s.peakHeld = max(s.peakHeld, capacity - s.free)
                return true
            }
            s.nextID += 1
            s.waiters.append(Waiter(id: s.nextID, grant: grant))
            queued(WaiterID(value: s.nextID))
            s.watchers.send(s.waiting)
            return false
        }
        return now ? PayloadSlot(pool: self) : nil
    }

    /// A slot, waiting for one to free (first come first served). Throws `CancellationError`
    /// when the calling task is cancelled while it waits.
    package func acquire() async throws -> PayloadSlot {
        let waiter = Mutex<(id: WaiterID?, cancelled: Bool)>((nil, false))
        let slot: PayloadSlot? = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<PayloadSlot?, Never>) in
                let granted = enqueue(queued: { id in waiter.withLock { $0.id = id } }) { continuation.resume(returning: $0) }
                if let granted {
                    continuation.resume(returning: granted)
                } else if waiter.withLock({ $0.cancelled }) {
                    withdraw(waiter.withLock { $0.id })  // cancelled before it was queued
                }
            }
        } onCancel: {
            let id: WaiterID? = waiter.withLock { $0.cancelled = true; return $0.id }
            withdraw(id)
        }
        guard let slot else { throw CancellationError() }
        return slot
    }

    /// Removes a still-queued async waiter and resumes it empty-handed; one already granted keeps its slot.
    private func withdraw(_ id: WaiterID?) {
        guard let id, let w = remove(id) else { return }
        w.grant(nil)
    }

    /// Forgets a waiter whose connection closed (its `grant` is never called).
    package func cancel(waiter id: WaiterID) {
        _ = remove(id)
    }

    private func remove(_ id: WaiterID) -> Waiter? {
        state.withLock { s in
            guard let i = s.waiters[s.head...].firstIndex(where: { $0.id == id.value }) else { return nil }
            let w = s.waiters.remove(at: i)
            s.watchers.send(s.waiting)
            return w
        }
    }

    /// A slot came back: hand it to the first waiter, or return it to the pool.
    fileprivate func free() {
        let next: Waiter? = state.withLock { s in
            guard s.head < s.waiters.count else {
                s.free += 1
                return nil
            }
            let w = s.waiters[s.head]
            s.head += 1
            if s.head > 64 && s.head * 2 > s.waiters.count {
                s.waiters.removeFirst(s.head)
                s.head = 0
            }
            s.watchers.send(s.waiting)
            return w
        }
        next?.grant(PayloadSlot(pool: self))
    }
}
