// The server's K payload slots, shared by the native wire and the Flower port: first come first
// served, each slot returned once, and a waiter that gives up leaves the queue.
@testable import FlowerCore
import Synchronization
import TestSupport
import XCTest

final class PayloadSlotsTests: XCTestCase {
    func testSlotsAreGrantedInArrivalOrderAndReturnedOnce() throws {
        let slots = PayloadSlots(capacity: 2)
        let granted = Mutex<[(String, PayloadSlot)]>([])
        let a = try XCTUnwrap(slots.acquire { _ in XCTFail("a slot was free") })
        let b = try XCTUnwrap(slots.acquire { _ in XCTFail("a slot was free") })
        XCTAssertNil(slots.acquire { s in granted.withLock { $0.append(("c", s)) } })
        XCTAssertNil(slots.acquire { s in granted.withLock { $0.append(("d", s)) } })
        XCTAssertEqual(slots.held, 2)
        XCTAssertEqual(slots.waiting, 2)

        a.release()
        a.release()  // idempotent: the second release frees nothing
        XCTAssertEqual(granted.withLock { $0.map(\.0) }, ["c"])
        XCTAssertEqual(slots.held, 2, "a's slot went straight to c")
        XCTAssertEqual(slots.waiting, 1)

        b.release()
        XCTAssertEqual(granted.withLock { $0.map(\.0) }, ["c", "d"])
        granted.withLock { $0.forEach { $0.1.release() } }
        XCTAssertEqual(slots.held, 0)
        XCTAssertEqual(slots.waiting, 0)
        XCTAssertEqual(slots.peakHeld, 2)
    }

    func testACancelledQueuedWaiterIsNeverGrantedASlot() throws {
        let slots = PayloadSlots(capacity: 1)
        var cancelledID: PayloadSlots.WaiterID?
        let held = try XCTUnwrap(slots.acquire { _ in })
        XCTAssertNil(slots.acquire(queued: { cancelledID = $0 }) { _ in XCTFail("a cancelled waiter got a slot") })
        let next = Mutex<PayloadSlot?>(nil)
        XCTAssertNil(slots.acquire { s in next.withLock { $0 = s } })
        slots.cancel(waiter: try XCTUnwrap(cancelledID))
        XCTAssertEqual(slots.waiting, 1)
        held.release()
        XCTAssertNotNil(next.withLock { $0 }, "the slot skipped the cancelled waiter")
        next.withLock { $0 = nil }  // dropped: released by deinit
        XCTAssertEqual(slots.held, 0)
    }

    func testAnAsyncWaiterGetsTheFreedSlot() async throws {
        let slots = PayloadSlots(capacity: 1)
        let held = try await slots.acquire()
        let waiter = Task { try await slots.acquire() }
        let queued = await slots.waitingCounts().first(within: .seconds(30)) { $0 > 0 }
        XCTAssertEqual(queued, 1, "the waiter queued")
        XCTAssertEqual(slots.waiting, 1)
        held.release()
        let slot = try await waiter.value
        XCTAssertEqual(slots.held, 1)
        slot.release()
        XCTAssertEqual(slots.held, 0)
        XCTAssertEqual(slots.peakHeld, 1)
    }

    func testAnAsyncWaiterCancelledWhileQueuedLeavesTheQueue() async throws {
        let slots = PayloadSlots(capacity: 1)
        let held = try await slots.acquire()
        let waiter = Task { try await slots.acquire() }
        let queued = await slots.waitingCounts().first(within: .seconds(30)) { $0 > 0 }
        XCTAssertEqual(queued, 1, "the waiter queued")
        XCTAssertEqual(slots.waiting, 1)
        waiter.cancel()
        do {
            let s = try await waiter.value
            XCTFail("a cancelled waiter got \(s)")
        } catch is CancellationError {}
        XCTAssertEqual(slots.waiting, 0)
        held.release()
        XCTAssertEqual(slots.held, 0, "the freed slot went back to the pool, not to the cancelled waiter")
    }

    func testAnAsyncWaiterCancelledBeforeItAsksIsNotQueued() async throws {
        let slots = PayloadSlots(capacity: 1)
        let held = try await slots.acquire()
        let waiter = Task { () async throws -> PayloadSlot in
            await untilCancelled()
            return try await slots.acquire()
        }
        waiter.cancel()
        do {
            let s = try await waiter.value
            XCTFail("a cancelled waiter got \(s)")
        } catch is CancellationError {}
        XCTAssertEqual(slots.waiting, 0)
        held.release()
        XCTAssertEqual(slots.held, 0)
    }
}
