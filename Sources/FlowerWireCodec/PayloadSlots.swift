// Bounded memory on the server: at most K large received payloads (FitRes, ParametersRes, ...)
// are buffered at once over all connections. A connection whose next frame is large waits for a
// slot without reading (its `ReadGate` holds back reads; TCP flow control stops the sender), so
// the server's peak is O(model × K), not O(model × clients). A slot is released when the frame
// it carried has been decoded into `Parameters` (or its connection closes).
import FlowerCore
import Logging
import NIOCore
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

/// The K slots shared by all connections of one server.
public final class PayloadSlots: Sendable {
    /// Payloads of at least this many bytes need a slot; smaller ones are read freely.
    public static let threshold = 64 << 10

    private struct Waiter {
        let id: ObjectIdentifier
        let loop: any EventLoop
        let grant: @Sendable (PayloadSlot) -> Void
    }

    private struct State {
        var free: Int
        var waiters: [Waiter] = []
        var head = 0
        var peakHeld = 0
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

    /// A slot now, or nil after queueing `grant` to run on `loop` when one frees (FIFO).
    package func acquire(waiter id: ObjectIdentifier, on loop: any EventLoop,
                 _ grant: @escaping @Sendable (PayloadSlot) -> Void) -> PayloadSlot? {
        let now: Bool = state.withLock { s in
            if s.free > 0 {
                s.free -= 1
                s.peakHeld = max(s.peakHeld, capacity - s.free)
                return true
            }
            s.waiters.append(Waiter(id: id, loop: loop, grant: grant))
            return false
        }
        return now ? PayloadSlot(pool: self) : nil
    }

    /// Forgets a waiter whose channel closed.
    package func cancel(waiter id: ObjectIdentifier) {
        state.withLock { s in
            if let i = s.waiters[s.head...].firstIndex(where: { $0.id == id }) { s.waiters.remove(at: i) }
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
            return w
        }
        guard let next else { return }
        let slot = PayloadSlot(pool: self)
        next.loop.execute { next.grant(slot) }
    }
}
