// GEMM kernel, BLIS structure: C[m×n] (+)= A[m×k] · B[k×n], float32, one thread.
//
// This file is compiled three times (Package.swift): TensorGEMMBaseline (SSE2),
// TensorGEMMAVX2 (-target-cpu haswell, FMA) and TensorGEMMAVX512 (-target-cpu skylake-avx512).
// `Tensor` calls only the variant the CPU supports (KernelLevel.swift). For that to be safe the
// module exports plain functions over raw pointers and Ints, and no types: no AVX code can be
// reached through a value witness or a global initialiser.
//
// Micro-kernel contract (flame/blis docs/KernelsHowTo.md, adapted):
//   packed A micro-panel: kc steps of `mr` floats (column p of the mr×kc block, rows contiguous);
//   packed B micro-panel: kc steps of `nr` floats (row p of the kc×nr block, columns contiguous);
//   C tile mr×nr row-major with leading dimension ldc; overwritten, or added to if `accumulate`.
// Loops: jc (nc columns of B) → pc (kc of the reduction, pack B) → ic (mc rows, pack A)
//        → jr (nr) → ir (mr) → micro-kernel. Threads are split by the caller (Tensor/GEMM.swift).
//
// Tile sizes per variant:        mr   nr   registers for the C tile
//   AVX-512 (SIMD16, 32 zmm)      8   32   16 zmm
//   AVX2    (SIMD8,  16 ymm)      6   16   12 ymm
//   SSE2    (SIMD4,  16 xmm)      6    8   12 xmm

#if GEMM_AVX512
typealias Vec = SIMD16<Float>
typealias VecBits = SIMD16<UInt32>
typealias VecInt = SIMD16<Int32>
@inline(__always) var tileMR: Int { 8 }
#elseif GEMM_AVX2
typealias Vec = SIMD8<Float>
typealias VecBits = SIMD8<UInt32>
typealias VecInt = SIMD8<Int32>
@inline(__always) var tileMR: Int { 6 }
#else
typealias Vec = SIMD4<Float>
typealias VecBits = SIMD4<UInt32>
typealias VecInt = SIMD4<Int32>
@inline(__always) var tileMR: Int { 6 }
#endif

/// Columns per micro-tile (two vectors).
@inline(__always) var tileNR: Int { 2 * Vec.scalarCount }
/// Reduction block: a kc×nr B micro-panel (32 KB at AVX-512) stays in L1.
@inline(__always) var blockKC: Int { 256 }
/// Row block: an mc×kc packed A block stays in L2 (multiple of mr).
@inline(__always) var blockMC: Int { tileMR == 8 ? 128 : 120 }
/// Column block: a kc×nc packed B panel (512 KB).
@inline(__always) var blockNC: Int { 512 }

/// Floats the caller must provide for packed A (mc×kc) in `gemmSerial`.
public func gemmPackACapacity() -> Int { 128 * 256 }
/// Floats the caller must provide for packed B (kc×nc) plus one scratch C tile.
public func gemmPackBCapacity() -> Int { 256 * 512 + 8 * 32 }
/// The micro-tile (mr, nr) of this variant, for tests and partitioning.
public func gemmTile() -> (mr: Int, nr: Int) { (tileMR, tileNR) }

@inline(__always)
func fmadd(_ acc: Vec, _ a: Vec, _ b: Vec) -> Vec {
    #if GEMM_FMA
    return acc.addingProduct(a, b)
    #else
    return acc + a * b
    #endif
}

@inline(__always)
func load(_ p: UnsafePointer<Float>) -> Vec {
    UnsafeRawPointer(p).loadUnaligned(as: Vec.self)
}

@inline(__always)
func store(_ v: Vec, _ p: UnsafeMutablePointer<Float>, _ accumulate: Bool) {
    let raw = UnsafeMutableRawPointer(p)
    if accumulate {
        raw.storeBytes(of: raw.loadUnaligned(as: Vec.self) + v, as: Vec.self)
    } else {
        raw.storeBytes(of: v, as: Vec.self)
    }
}

#if GEMM_AVX512
/// 8×32 micro-kernel: 16 zmm accumulators, 2 B loads and 8 broadcasts per k step.
@inline(__always)
func microKernel(_ kc: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                         _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ accumulate: Bool) {
    var c0a = Vec(), c0b = Vec(), c1a = Vec(), c1b = Vec(), c2a = Vec(), c2b = Vec()
    var c3a = Vec(), c3b = Vec(), c4a = Vec(), c4b = Vec(), c5a = Vec(), c5b = Vec()
    var c6a = Vec(), c6b = Vec(), c7a = Vec(), c7b = Vec()
    var pa = a, pb = b
    for _ in 0..<kc {
        let b0 = load(pb), b1 = load(pb + 16)
        var av = Vec(repeating: pa[0]); c0a = fmadd(c0a, av, b0); c0b = fmadd(c0b, av, b1)
        av = Vec(repeating: pa[1]); c1a = fmadd(c1a, av, b0); c1b = fmadd(c1b, av, b1)
        av = Vec(repeating: pa[2]); c2a = fmadd(c2a, av, b0); c2b = fmadd(c2b, av, b1)
        av = Vec(repeating: pa[3]); c3a = fmadd(c3a, av, b0); c3b = fmadd(c3b, av, b1)
        av = Vec(repeating: pa[4]); c4a = fmadd(c4a, av, b0); c4b = fmadd(c4b, av, b1)
        av = Vec(repeating: pa[5]); c5a = fmadd(c5a, av, b0); c5b = fmadd(c5b, av, b1)
        av = Vec(repeating: pa[6]); c6a = fmadd(c6a, av, b0); c6b = fmadd(c6b, av, b1)
        av = Vec(repeating: pa[7]); c7a = fmadd(c7a, av, b0); c7b = fmadd(c7b, av, b1)
        pa += 8; pb += 32
    }
    store(c0a, c, accumulate); store(c0b, c + 16, accumulate)
    store(c1a, c + ldc, accumulate); store(c1b, c + ldc + 16, accumulate)
    store(c2a, c + 2 * ldc, accumulate); store(c2b, c + 2 * ldc + 16, accumulate)
    store(c3a, c + 3 * ldc, accumulate); store(c3b, c + 3 * ldc + 16, accumulate)
    store(c4a, c + 4 * ldc, accumulate); store(c4b, c + 4 * ldc + 16, accumulate)
    store(c5a, c + 5 * ldc, accumulate); store(c5b, c + 5 * ldc + 16, accumulate)
    store(c6a, c + 6 * ldc, accumulate); store(c6b, c + 6 * ldc + 16, accumulate)
    store(c7a, c + 7 * ldc, accumulate); store(c7b, c + 7 * ldc + 16, accumulate)
}
#else
/// 6×(2 vectors) micro-kernel: 12 accumulators, 2 B loads and 6 broadcasts per k step.
@inline(__always)
func microKernel(_ kc: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                         _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ accumulate: Bool) {
    let w = Vec.scalarCount
    var c0a = Vec(), c0b = Vec(), c1a = Vec(), c1b = Vec(), c2a = Vec(), c2b = Vec()
    var c3a = Vec(), c3b = Vec(), c4a = Vec(), c4b = Vec(), c5a = Vec(), c5b = Vec()
    var pa = a, pb = b
    for _ in 0..<kc {
        let b0 = load(pb), b1 = load(pb + w)
        var av = Vec(repeating: pa[0]); c0a = fmadd(c0a, av, b0); c0b = fmadd(c0b, av, b1)
        av = Vec(repeating: pa[1]); c1a = fmadd(c1a, av, b0); c1b = fmadd(c1b, av, b1)
        av = Vec(repeating: pa[2]); c2a = fmadd(c2a, av, b0); c2b = fmadd(c2b, av, b1)
        av = Vec(repeating: pa[3]); c3a = fmadd(c3a, av, b0); c3b = fmadd(c3b, av, b1)
        av = Vec(repeating: pa[4]); c4a = fmadd(c4a, av, b0); c4b = fmadd(c4b, av, b1)
        av = Vec(repeating: pa[5]); c5a = fmadd(c5a, av, b0); c5b = fmadd(c5b, av, b1)
        pa += 6; pb += 2 * w
    }
    store(c0a, c, accumulate); store(c0b, c + w, accumulate)
    store(c1a, c + ldc, accumulate); store(c1b, c + ldc + w, accumulate)
    store(c2a, c + 2 * ldc, accumulate); store(c2b, c + 2 * ldc + w, accumulate)
    store(c3a, c + 3 * ldc, accumulate); store(c3b, c + 3 * ldc + w, accumulate)
    store(c4a, c + 4 * ldc, accumulate); store(c4b, c + 4 * ldc + w, accumulate)
    store(c5a, c + 5 * ldc, accumulate); store(c5b, c + 5 * ldc + w, accumulate)
}
#endif

/// Packs rows [i0, i0+mc) × reduction [p0, p0+kc) of A (element (i,p) at a[i*rs + p*cs]) into
/// mr-row micro-panels, zero-padding the last panel.
@inline(__always)
func packA(_ a: UnsafePointer<Float>, _ rs: Int, _ cs: Int, _ i0: Int, _ mc: Int,
                   _ p0: Int, _ kc: Int, _ out: UnsafeMutablePointer<Float>) {
    let mr = tileMR
    var panel = 0
    while panel < mc {
        let rows = min(mr, mc - panel)
        let dst = out + panel * kc
        if rows < mr { dst.initialize(repeating: 0, count: mr * kc) }
        if cs == 1 {
            // A transpose: vector loads, one scalar store per element (LLVM vectorised the plain
            // loop into scatters, ~12% of the weight-gradient GEMM in perf on Zen 5).
            let w = Vec.scalarCount
            for r in 0..<rows {
                let src = a + (i0 + panel + r) * rs + p0
                let d = dst + r
                var p = 0
                while p + w <= kc {
                    let v = load(src + p)
                    for i in 0..<w { d[(p + i) * mr] = v[i] }
                    p += w
                }
                while p < kc { d[p * mr] = src[p]; p += 1 }
            }
        } else {
            for p in 0..<kc {
                let src = a + (i0 + panel) * rs + (p0 + p) * cs
                let d = dst + p * mr
                for r in 0..<rows { d[r] = src[r * rs] }
            }
        }
        panel += mr
    }
}

/// Packs reduction [p0, p0+kc) × columns [j0, j0+nc) of B (element (p,j) at b[p*rs + j*cs])
/// into nr-column micro-panels, zero-padding the last panel.
@inline(__always)
func packB(_ b: UnsafePointer<Float>, _ rs: Int, _ cs: Int, _ p0: Int, _ kc: Int,
                   _ j0: Int, _ nc: Int, _ out: UnsafeMutablePointer<Float>) {
    let nr = tileNR
    var panel = 0
    while panel < nc {
        let cols = min(nr, nc - panel)
        let dst = out + panel * kc
        if cs == 1 && cols == nr {
            var src = b + p0 * rs + j0 + panel
            var d = dst
            for _ in 0..<kc {
                UnsafeMutableRawPointer(d).storeBytes(of: load(src), as: Vec.self)
                UnsafeMutableRawPointer(d + nr / 2).storeBytes(of: load(src + nr / 2), as: Vec.self)
                src += rs; d += nr
            }
        } else if cs == 1 {
            dst.initialize(repeating: 0, count: nr * kc)
            for p in 0..<kc {
                let src = b + (p0 + p) * rs + j0 + panel
                let d = dst + p * nr
                for j in 0..<cols { d[j] = src[j] }
            }
        } else if rs == 1 {
            // A transpose, as in packA.
            if cols < nr { dst.initialize(repeating: 0, count: nr * kc) }
            let w = Vec.scalarCount
            for j in 0..<cols {
                let src = b + p0 + (j0 + panel + j) * cs
                let d = dst + j
                var p = 0
                while p + w <= kc {
                    let v = load(src + p)
                    for i in 0..<w { d[(p + i) * nr] = v[i] }
                    p += w
                }
                while p < kc { d[p * nr] = src[p]; p += 1 }
            }
        } else {
            if cols < nr { dst.initialize(repeating: 0, count: nr * kc) }
            for j in 0..<cols {
                let src = b + p0 * rs + (j0 + panel + j) * cs
                var d = dst + j
                for p in 0..<kc { d.pointee = src[p * rs]; d += nr }
            }
        }
        panel += nr
    }
}

/// The five loops around the micro-kernel. `packBlock(p0, kc, j0, nc, out)` packs the kc×nc block
/// of B at reduction p0 and column j0 into nr-column micro-panels (zero-padded). Without
/// `scatter`, tiles go to C (overwritten, or added to when `accumulate` or after the first kc
/// block). With `scatter`, every tile is computed into the scratch tile (mr×nr, leading
/// dimension nr) and `storeTile(scratch, i0, rows, j0, cols)` adds it wherever it belongs.
@inline(__always)
func gemmBlocked(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, aRS: Int, aCS: Int,
                         c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool,
                         pa: UnsafeMutablePointer<Float>, pb: UnsafeMutablePointer<Float>, scatter: Bool,
                         packBlock: (Int, Int, Int, Int, UnsafeMutablePointer<Float>) -> Void,
                         storeTile: (UnsafePointer<Float>, Int, Int, Int, Int) -> Void) {
    let mr = tileMR, nr = tileNR
    let kcMax = blockKC, mcMax = blockMC, ncMax = blockNC
    let scratch = pb + kcMax * ncMax
    var jc = 0
    while jc < n {
        let nc = min(ncMax, n - jc)
        var pc = 0
        while pc < k {
            let kc = min(kcMax, k - pc)
            let acc = accumulate || pc > 0
            packBlock(pc, kc, jc, nc, pb)
            var ic = 0
            while ic < m {
                let mc = min(mcMax, m - ic)
                packA(a, aRS, aCS, ic, mc, pc, kc, pa)
                var jr = 0
                while jr < nc {
                    let cols = min(nr, nc - jr)
                    let bPanel = UnsafePointer(pb + jr * kc)
                    var ir = 0
                    while ir < mc {
                        let rows = min(mr, mc - ir)
                        let aPanel = UnsafePointer(pa + ir * kc)
                        if scatter {
                            microKernel(kc, aPanel, bPanel, scratch, nr, false)
                            storeTile(UnsafePointer(scratch), ic + ir, rows, jc + jr, cols)
                        } else {
                            let cTile = c + (ic + ir) * ldc + jc + jr
                            if rows == mr && cols == nr {
                                microKernel(kc, aPanel, bPanel, cTile, ldc, acc)
                            } else {
                                microKernel(kc, aPanel, bPanel, scratch, nr, false)
                                for r in 0..<rows {
                                    let dst = cTile + r * ldc, src = scratch + r * nr
                                    if acc {
                                        for j in 0..<cols { dst[j] += src[j] }
                                    } else {
                                        for j in 0..<cols { dst[j] = src[j] }
                                    }
                                }
                            }
                        }
                        ir += mr
                    }
                    jr += nr
                }
                ic += mc
            }
            pc += kc
        }
        jc += nc
    }
}

/// C[m×n] = A·B, or C += A·B when `accumulate`, on one thread.
/// A element (i,p) is a[i*aRS + p*aCS]; B element (p,j) is b[p*bRS + j*bCS]; C is row-major with
/// leading dimension ldc. Strides express transposes (e.g. Aᵀ: aRS = 1, aCS = lda).
/// packA/packB hold at least gemmPackACapacity()/gemmPackBCapacity() floats.
public func gemmSerial(m: Int, n: Int, k: Int,
                       a: UnsafePointer<Float>, aRS: Int, aCS: Int,
                       b: UnsafePointer<Float>, bRS: Int, bCS: Int,
                       c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool,
                       packA pa: UnsafeMutablePointer<Float>, packB pb: UnsafeMutablePointer<Float>) {
    if m <= 0 || n <= 0 { return }
    if k <= 0 {
        if !accumulate { for i in 0..<m { (c + i * ldc).initialize(repeating: 0, count: n) } }
        return
    }
    gemmBlocked(m: m, n: n, k: k, a: a, aRS: aRS, aCS: aCS, c: c, ldc: ldc, accumulate: accumulate,
                pa: pa, pb: pb, scatter: false,
                packBlock: { p0, kc, j0, nc, out in packB(b, bRS, bCS, p0, kc, j0, nc, out) },
                storeTile: { _, _, _, _, _ in })
}
