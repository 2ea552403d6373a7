import XCTest
import Dispatch
@testable import Tensor

/// Work splitting covers every index exactly once, with aligned boundaries; kernel levels are sane.
final class ParallelTests: XCTestCase {
    func testRangesPartitionAndAlign() {
        for (count, parts, align) in [(0, 2, 1), (1, 2, 1), (100, 3, 8), (97, 2, 32), (5, 4, 1)] {
            var covered: [Int] = []
            for p in 0..<parts {
                let r = Parallel.range(p, of: parts, count: count, align: align)
                if p < parts - 1 && !r.isEmpty { XCTAssertEqual(r.upperBound % align, 0, "\(count)/\(parts)/\(align)") }
                covered += Array(r)
            }
            XCTAssertEqual(covered, Array(0..<count), "count \(count) parts \(parts) align \(align)")
        }
    }

    func testKernelLevels() throws {
        XCTAssertEqual(KernelLevel.supported.first, .baseline)
        XCTAssertEqual(KernelLevel.supported.last, KernelLevel.detected)
        XCTAssertLessThanOrEqual(try GEMMWorkspace(threads: 1, level: .avx512).level, KernelLevel.detected)
        XCTAssertThrowsError(try GEMMWorkspace(threads: 0))
    }
}

/// The persistent worker pool behind Parallel.run: every part runs exactly once per job, jobs
/// back to back and from several threads at once (the pool serves one, the others fall back to
/// concurrentPerform), and nested runs do not deadlock.
final class WorkerPoolTests: XCTestCase {
    func testEveryPartExactlyOnceUnderConcurrentAndNestedUse() {
        let callers = 3, jobs = 2000, parts = 5
        let counts = UnsafeMutablePointer<Int>.allocate(capacity: callers * jobs * parts)
        counts.initialize(repeating: 0, count: callers * jobs * parts)
        defer { counts.deallocate() }
        let shared = UnsafeTransfer(counts)
        DispatchQueue.concurrentPerform(iterations: callers) { caller in
            for job in 0..<jobs {
                let base = (caller * jobs + job) * parts
                Parallel.run(parts) { part in
                    // Each part touches only its own counter; some parts nest a run of their own.
                    if part == 1 && job % 50 == 0 { Parallel.run(2) { _ in } }
                    shared.value[base + part] += 1
                }
            }
        }
        let wrong = (0..<callers * jobs * parts).filter { counts[$0] != 1 }
        XCTAssertTrue(wrong.isEmpty, "\(wrong.count) parts did not run exactly once, first at \(wrong.first ?? -1)")
    }
}
