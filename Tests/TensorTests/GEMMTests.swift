import XCTest
@testable import Tensor

/// Deterministic test data: values in [-1, 1) from a seeded generator.
func randomFloats(_ count: Int, seed: UInt64) -> [Float] {
    var rng = SplitMix64(seed: seed)
    return (0..<count).map { _ in Float.random(in: -1..<1, using: &rng) }
}

/// Largest |x - y| over two equal-length arrays.
func maxAbsDiff(_ x: [Float], _ y: [Float]) -> Float {
    zip(x, y).reduce(0) { max($0, abs($1.0 - $1.1)) }
}

/// One GEMM case: fast `gemm` at `level` with `threads` against `gemmReference`.
func checkGEMM(m: Int, n: Int, k: Int, transA: Bool, transB: Bool, accumulate: Bool,
               threads: Int, level: KernelLevel, file: StaticString = #filePath, line: UInt = #line) throws {
    let a = randomFloats(m * k, seed: 1), b = randomFloats(k * n, seed: 2)
    let c0 = randomFloats(m * n, seed: 3)
    var fast = c0, ref = c0
    let (aRS, aCS) = transA ? (1, m) : (k, 1)
    let (bRS, bCS) = transB ? (1, k) : (n, 1)
    let ws = try GEMMWorkspace(threads: threads, level: level)
    a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in
        fast.withUnsafeMutableBufferPointer { pc in
            gemm(m: m, n: n, k: k, a: pa.baseAddress!, aRS: aRS, aCS: aCS, b: pb.baseAddress!, bRS: bRS, bCS: bCS,
                 c: pc.baseAddress!, ldc: n, accumulate: accumulate, threads: threads, workspace: ws)
        }
        ref.withUnsafeMutableBufferPointer { pc in
            gemmReference(m: m, n: n, k: k, a: pa.baseAddress!, aRS: aRS, aCS: aCS, b: pb.baseAddress!, bRS: bRS,
                          bCS: bCS, c: pc.baseAddress!, ldc: n, accumulate: accumulate)
        }
    } }
    // Tolerance: float32 accumulation over k terms of magnitude <= 1.
    let tol = Float(k) * 4e-7 + 1e-5
    let diff = maxAbsDiff(fast, ref)
    XCTAssertLessThanOrEqual(diff, tol, "gemm \(m)x\(n)x\(k) tA=\(transA) tB=\(transB) acc=\(accumulate) "
        + "threads=\(threads) level=\(level): max |fast-ref| = \(diff) > \(tol)", file: file, line: line)
}

final class GEMMTests: XCTestCase {
    /// Odd shapes (not multiples of mr, nr, or the vector width) at every supported level.
    func testOddShapesAllLevelsAndTransposes() throws {
        for level in KernelLevel.supported {
            for (m, n, k) in [(1, 1, 1), (7, 13, 5), (9, 33, 17), (13, 35, 3), (17, 50, 1)] {
                for tA in [false, true] { for tB in [false, true] {
                    try checkGEMM(m: m, n: n, k: k, transA: tA, transB: tB, accumulate: tA != tB,
                                  threads: 1, level: level)
                } }
            }
        }
    }

    /// Shapes that cross the kc/mc blocks and split across two threads (rows and columns).
    func testBlockBoundariesTwoThreads() throws {
        try checkGEMM(m: 50, n: 300, k: 270, transA: false, transB: false, accumulate: false,
                      threads: 2, level: .detected)
        try checkGEMM(m: 130, n: 20, k: 300, transA: true, transB: true, accumulate: true,
                      threads: 2, level: .detected)
    }

    /// k = 0 leaves C = 0 (or unchanged when accumulating), like BLAS with beta 0/1.
    func testEmptyReduction() throws {
        var c: [Float] = [1, 2, 3, 4]
        let ws = try GEMMWorkspace(threads: 1)
        let x: [Float] = [0]
        x.withUnsafeBufferPointer { p in c.withUnsafeMutableBufferPointer { pc in
            gemm(m: 2, n: 2, k: 0, a: p.baseAddress!, aRS: 0, aCS: 0, b: p.baseAddress!, bRS: 0, bCS: 0,
                 c: pc.baseAddress!, ldc: 2, accumulate: false, threads: 1, workspace: ws)
        } }
        XCTAssertEqual(c, [0, 0, 0, 0])
    }
}

/// Large shapes at every level (release only: SIMD code at -Onone is ~100x slower).
final class GEMMReleaseTests: XCTestCase {
    override func setUpWithError() throws {
        #if DEBUG
        throw XCTSkip("release-only: run swift test -c release --filter ReleaseTests")
        #endif
    }

    func testConvShapesAllLevels() throws {
        for level in KernelLevel.supported {
            try checkGEMM(m: 64, n: 1000, k: 288, transA: false, transB: false, accumulate: false, threads: 2, level: level)
            try checkGEMM(m: 256, n: 1152, k: 290, transA: false, transB: true, accumulate: false, threads: 2, level: level)
            try checkGEMM(m: 577, n: 301, k: 128, transA: true, transB: false, accumulate: true, threads: 2, level: level)
        }
    }
}
