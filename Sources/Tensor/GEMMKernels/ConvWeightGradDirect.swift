// Weight gradient of a 3×3 convolution with few input channels (the first layer), without
// GEMM packing: dW[co, (c, t)] = Σ_q dY[co, q] · col[(c, t), q] as dot products along the
// pixels q, where both operands are contiguous. As a GEMM this layer has N = C*9 (9 or 27
// columns, most of a 32-wide micro-panel wasted) and K = every pixel of the batch, and packing
// colᵀ costs more than its FLOPs (31 GFLOPS on one core for 1×28×28). Compiled three times like
// GEMMKernel.swift. Geometry and col as in ConvGEMM.swift.

/// Accumulates the 9 taps of channel c for output rows co and co2 (co2 == co for an odd last
/// row) over every pixel, into a[0..<9] and b[0..<9] (reduced to scalars by the caller).
@inline(__always)
private func directTaps(_ dY0: UnsafePointer<Float>, _ dY1: UnsafePointer<Float>, _ x: UnsafePointer<Float>,
                        _ batch: Int, _ h: Int, _ w: Int, _ bs: Int, _ cs: Int, _ c: Int, _ extent: Int,
                        _ masks: UnsafePointer<UInt32>, _ offsets: UnsafePointer<Int>,
                        _ a: UnsafeMutablePointer<Vec>, _ b: UnsafeMutablePointer<Vec>,
                        _ scratch: UnsafeMutablePointer<Float>) {
    let lanes = Vec.scalarCount, plane = h * w, span = maskSpan(h, w)
    // Named accumulators (18 zmm + 2 gradients + 1 tap vector fit in 32 registers; through
    // memory they ran at 28 GFLOPS).
    var a0 = Vec(), a1 = Vec(), a2 = Vec(), a3 = Vec(), a4 = Vec(), a5 = Vec(), a6 = Vec(), a7 = Vec(), a8 = Vec()
    var b0 = Vec(), b1 = Vec(), b2 = Vec(), b3 = Vec(), b4 = Vec(), b5 = Vec(), b6 = Vec(), b7 = Vec(), b8 = Vec()
    var q = 0
    for n in 0..<batch {
        let imageBase = n * bs + c * cs
        var pos = 0
        while pos < plane {
            let g0 = load(dY0 + q), g1 = load(dY1 + q)
            let base = imageBase + pos
            @inline(__always) func tap(_ t: Int) -> Vec {
                let src = base + offsets[t], m = masks + t * span + pos
                if src >= 0 && src + lanes <= extent {
                    return unsafeBitCast(loadBits(x + src) & loadBits(m), to: Vec.self)
                }
                for i in 0..<lanes { scratch[i] = m[i] != 0 ? x[src + i] : 0 }
                return load(scratch)
            }
            do { let v = tap(0); a0 = fmadd(a0, g0, v); b0 = fmadd(b0, g1, v) }
            do { let v = tap(1); a1 = fmadd(a1, g0, v); b1 = fmadd(b1, g1, v) }
            do { let v = tap(2); a2 = fmadd(a2, g0, v); b2 = fmadd(b2, g1, v) }
            do { let v = tap(3); a3 = fmadd(a3, g0, v); b3 = fmadd(b3, g1, v) }
            do { let v = tap(4); a4 = fmadd(a4, g0, v); b4 = fmadd(b4, g1, v) }
            do { let v = tap(5); a5 = fmadd(a5, g0, v); b5 = fmadd(b5, g1, v) }
            do { let v = tap(6); a6 = fmadd(a6, g0, v); b6 = fmadd(b6, g1, v) }
            do { let v = tap(7); a7 = fmadd(a7, g0, v); b7 = fmadd(b7, g1, v) }
            do { let v = tap(8); a8 = fmadd(a8, g0, v); b8 = fmadd(b8, g1, v) }
            pos += lanes; q += lanes
        }
    }
    a[0] = a0; b[0] = b0
    a[1] = a1; b[1] = b1
    a[2] = a2; b[2] = b2
    a[3] = a3; b[3] = b3
    a[4] = a4; b[4] = b4
    a[5] = a5; b[5] = b5
    a[6] = a6; b[6] = b6
    a[7] = a7; b[7] = b7
    a[8] = a8; b[8] = b8
}

/// dW[co, r] (row stride C*9) for co in rows, every r = (c, ky, kx): the weight gradient of a
/// 3×3 convolution (padding `pad`) of image x with output gradient dY ([Cout, N*h*w]).
/// Returns false, writing nothing, where it does not apply (kernel other than 3, planes not a
/// multiple of the vector width, or an image too large for the mask table).
public func convWeightGradDirectSerial(rows: Range<Int>, dY: UnsafePointer<Float>, image x: UnsafePointer<Float>,
                                       batch: Int, channels: Int, h: Int, w: Int, bs: Int, cs: Int, kernel kk: Int,
                                       pad: Int, dW: UnsafeMutablePointer<Float>) -> Bool {
    let plane = h * w, q = batch * plane, lanes = Vec.scalarCount
    guard kk == 3, plane % lanes == 0, batch > 0, channels > 0 else { return false }
    let extent = (batch - 1) * bs + (channels - 1) * cs + plane
    var done = false
    withTapMasks(h, w, kk, pad) { masks in
        guard let masks else { return }
        withUnsafeTemporaryAllocation(of: Vec.self, capacity: 18) { acc in
            withUnsafeTemporaryAllocation(of: Int.self, capacity: 9 + lanes) { ints in
                guard let a = acc.baseAddress, let offsets = ints.baseAddress else { return }
                let scratch = UnsafeMutableRawPointer(offsets + 9).assumingMemoryBound(to: Float.self)
                for t in 0..<9 { offsets[t] = (t / 3 - pad) * w + (t % 3 - pad) }
                let b = a + 9, ld = channels * 9
                var co = rows.lowerBound
                while co < rows.upperBound {
                    let co2 = min(co + 1, rows.upperBound - 1)
                    for c in 0..<channels {
                        directTaps(dY + co * q, dY + co2 * q, x, batch, h, w, bs, cs, c, extent, masks, offsets,
                                   a, b, scratch)
                        for t in 0..<9 {
                            dW[co * ld + c * 9 + t] = a[t].sum()
                            if co2 != co { dW[co2 * ld + c * 9 + t] = b[t].sum() }
                        }
                    }
                    co += 2
                }
                done = true
            }
        }
    }
    return done
}
