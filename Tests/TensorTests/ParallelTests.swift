import XCTest
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
