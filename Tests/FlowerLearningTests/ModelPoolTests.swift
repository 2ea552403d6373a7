import CNNModel
@testable import FlowerLearning
import Foundation
import Synchronization
import TestSupport
import XCTest

final class ModelPoolTests: XCTestCase {
    /// One model, held while four clients queue with different amounts of work: the freed model
    /// goes to the largest job first (ties in arrival order), one task at a time.
    func testFreedModelGoesToTheLargestWaitingJob() async throws {
        let pool = ModelPool(size: 1) { try referenceCNN(channels: 1, height: 16, width: 16, classes: 2, seed: 1, threads: 1) }
        let record = Record()
        let held = try await pool.acquire(work: 0)
        var waiters: [Task<Void, Error>] = []
        for (name, work) in [("small", 1), ("large", 9), ("mid", 5), ("large2", 9)] {
            waiters.append(Task {
                try await pool.withModel(work: work) { model in
                    XCTAssert(model === held.model, "a second model was built past the pool's size")
                    XCTAssertEqual(record.busy.withLock { $0 += 1; return $0 }, 1, "two tasks held the single model at once")
                    record.order.withLock { $0.append(name) }
                    record.busy.withLock { $0 -= 1 }
                }
            })
            // Queue them one by one so their arrival order is known.
            let n = waiters.count
            let queued = await pool.waitingCounts().first(within: .seconds(30)) { $0 >= n }
            XCTAssertEqual(queued, n, "\(name) queued")
        }
        XCTAssertEqual(record.order.withLock { $0 }, [], "nobody runs while the model is held")
        pool.release(held)
        for w in waiters { try await w.value }
        XCTAssertEqual(record.order.withLock { $0 }, ["large", "large2", "mid", "small"])
    }
}

extension ModelPoolTests {
    /// Training and evaluation run on the model's own thread, not on Swift's cooperative pool:
    /// each pooled model has one OS thread, every job of that model runs on it, and
    /// `withModel`'s body runs on one of them.
    func testWorkRunsOnADedicatedComputeThread() async throws {
        let pool = ModelPool(size: 2) { try referenceCNN(channels: 1, height: 16, width: 16, classes: 2, seed: 1, threads: 1) }
        let a = try await pool.acquire(work: 0), b = try await pool.acquire(work: 0)
        var idsA: Set<UInt> = [], idsB: Set<UInt> = []
        for _ in 0..<5 {
            idsA.insert(try await a.thread.run { UInt(pthread_self()) })
            idsB.insert(try await b.thread.run { UInt(pthread_self()) })
        }
        XCTAssertEqual(idsA.count, 1, "a model's work stays on its thread")
        XCTAssertEqual(idsB.count, 1)
        XCTAssertNotEqual(idsA, idsB, "each pooled model has its own thread")
        pool.release(a); pool.release(b)
        let inBody = try await pool.withModel { _ in UInt(pthread_self()) }
        XCTAssertTrue(idsA.union(idsB).contains(inBody), "withModel's body runs on a pooled model's thread")
    }
}

private final class Record: Sendable {
    let order = Mutex<[String]>([])
    let busy = Mutex(0)
}
