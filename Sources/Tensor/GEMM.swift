// GEMM: C[m×n] (+)= A[m×k]·B[k×n] in float32, split across threads, dispatched to the
// fastest compiled variant the CPU supports. The packed kernels live in GEMMKernels/ (compiled
// three times); this file owns threading, the dispatch and the scalar reference.
import TensorGEMMAVX2
import TensorGEMMAVX512
import TensorGEMMBaseline

/// Per-thread packing buffers for `gemm`, allocated once and reused (no allocation per call).
public final class GEMMWorkspace: @unchecked Sendable {
    /// The GEMM variant this workspace calls.
    public let level: KernelLevel
    /// Number of threads the buffers are sized for.
    public let threads: Int
    @usableFromInline let packA: UnsafeMutablePointer<Float>
    @usableFromInline let packB: UnsafeMutablePointer<Float>
    @usableFromInline let strideA: Int
    @usableFromInline let strideB: Int

    /// Buffers for `threads` workers at `level` (default: the CPU's, see KernelLevel.preferred).
    public init(threads: Int, level: KernelLevel? = nil) throws {
        guard threads >= 1 else { throw TensorError.invalidShape("GEMM threads \(threads) (must be >= 1)") }
        let chosen = try level.map { min($0, .detected) } ?? KernelLevel.preferred()
        self.level = chosen
        self.threads = threads
        // Every variant uses the same capacities (TensorGEMMBaseline reports them); round up
        // to a 64-byte multiple so each thread's panels start cache-line aligned.
        strideA = (TensorGEMMBaseline.gemmPackACapacity() + 15) & ~15
        strideB = (TensorGEMMBaseline.gemmPackBCapacity() + 15) & ~15
        packA = .allocate(capacity: strideA * threads)
        packB = .allocate(capacity: strideB * threads)
    }

    deinit {
        packA.deallocate()
        packB.deallocate()
    }

    /// Bytes held by the packing buffers.
    public var bytes: Int { (strideA + strideB) * threads * MemoryLayout<Float>.stride }
}

/// The arguments of one GEMM, in a form parallel workers may share (they write disjoint C ranges).
@usableFromInline
struct GEMMArgs: @unchecked Sendable {
    let m: Int, n: Int, k: Int
    let a: UnsafePointer<Float>, aRS: Int, aCS: Int
    let b: UnsafePointer<Float>, bRS: Int, bCS: Int
    let c: UnsafeMutablePointer<Float>, ldc: Int
    let accumulate: Bool
}

@inline(__always)
private func serial(_ level: KernelLevel, _ g: GEMMArgs, rows: Range<Int>, cols: Range<Int>,
                    _ pa: UnsafeMutablePointer<Float>, _ pb: UnsafeMutablePointer<Float>) {
    let a = g.a + rows.lowerBound * g.aRS, b = g.b + cols.lowerBound * g.bCS
    let c = g.c + rows.lowerBound * g.ldc + cols.lowerBound
    switch level {
    case .avx512:
        TensorGEMMAVX512.gemmSerial(m: rows.count, n: cols.count, k: g.k, a: a, aRS: g.aRS, aCS: g.aCS,
                                    b: b, bRS: g.bRS, bCS: g.bCS, c: c, ldc: g.ldc,
                                    accumulate: g.accumulate, packA: pa, packB: pb)
    case .avx2:
        TensorGEMMAVX2.gemmSerial(m: rows.count, n: cols.count, k: g.k, a: a, aRS: g.aRS, aCS: g.aCS,
                                  b: b, bRS: g.bRS, bCS: g.bCS, c: c, ldc: g.ldc,
                                  accumulate: g.accumulate, packA: pa, packB: pb)
    case .baseline:
        TensorGEMMBaseline.gemmSerial(m: rows.count, n: cols.count, k: g.k, a: a, aRS: g.aRS, aCS: g.aCS,
                                      b: b, bRS: g.bRS, bCS: g.bCS, c: c, ldc: g.ldc,
                                      accumulate: g.accumulate, packA: pa, packB: pb)
    }
}

/// C = A·B (or C += A·B when `accumulate`), float32, on up to `threads` threads.
/// A element (i,p) is a[i*aRS + p*aCS], B element (p,j) is b[p*bRS + j*bCS]; C is row-major
/// m×n with leading dimension ldc. Transposes are strides: Aᵀ of a row-major k×m matrix is
/// aRS = 1, aCS = m. Work is split over columns of C (or rows when n is small): only the
/// outer non-reduction loops are parallel, as in BLIS.
public func gemm(m: Int, n: Int, k: Int,
                 a: UnsafePointer<Float>, aRS: Int, aCS: Int,
                 b: UnsafePointer<Float>, bRS: Int, bCS: Int,
                 c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool = false,
                 threads: Int, workspace ws: GEMMWorkspace) {
    let g = GEMMArgs(m: m, n: n, k: k, a: a, aRS: aRS, aCS: aCS, b: b, bRS: bRS, bCS: bCS,
                     c: c, ldc: ldc, accumulate: accumulate)
    let level = ws.level
    splitGEMM(m: m, n: n, k: k, threads: threads, workspace: ws, colAlign: 32, rowAlign: 24) { rows, cols, pa, pb in
        serial(level, g, rows: rows, cols: cols, pa, pb)
    }
}

/// Runs an m×n×k GEMM as `body(rows, cols, packA, packB)` on up to `threads` workers, each with
/// its own packing buffers: split over columns (boundaries multiples of `colAlign`) when there
/// are enough, else over rows (`rowAlign`), else on one worker. Small GEMMs (under ~2 MFLOP
/// per worker, less than a wake-up is worth) run on the calling thread.
func splitGEMM(m: Int, n: Int, k: Int, threads: Int, workspace ws: GEMMWorkspace, colAlign: Int, rowAlign: Int,
               _ body: @Sendable (Range<Int>, Range<Int>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) -> Void) {
    let t = max(1, min(threads, ws.threads))
    let pa = UnsafeTransfer(ws.packA), pb = UnsafeTransfer(ws.packB)
    let sa = ws.strideA, sb = ws.strideB
    if t == 1 || 2 * m * n * k < 2_000_000 * t {
        body(0..<m, 0..<n, ws.packA, ws.packB)
    } else if n >= max(64, 2 * colAlign) * t {
        Parallel.run(t) { part in
            let cols = Parallel.range(part, of: t, count: n, align: colAlign)
            if !cols.isEmpty { body(0..<m, cols, pa.value + part * sa, pb.value + part * sb) }
        }
    } else if m >= max(24, rowAlign) * t {
        Parallel.run(t) { part in
            let rows = Parallel.range(part, of: t, count: m, align: rowAlign)
            if !rows.isEmpty { body(rows, 0..<n, pa.value + part * sa, pb.value + part * sb) }
        }
    } else {
        body(0..<m, 0..<n, ws.packA, ws.packB)
    }
}

/// Scalar reference for `gemm` (same argument meaning), accumulating in Double.
public func gemmReference(m: Int, n: Int, k: Int,
                          a: UnsafePointer<Float>, aRS: Int, aCS: Int,
                          b: UnsafePointer<Float>, bRS: Int, bCS: Int,
                          c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool = false) {
    for i in 0..<m {
        for j in 0..<n {
            var s = 0.0
            for p in 0..<k { s += Double(a[i * aRS + p * aCS]) * Double(b[p * bRS + j * bCS]) }
            c[i * ldc + j] = accumulate ? c[i * ldc + j] + Float(s) : Float(s)
        }
    }
}
