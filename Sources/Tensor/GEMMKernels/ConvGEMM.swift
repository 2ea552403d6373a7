// Implicit-im2col convolution GEMMs, one thread: the im2col matrix is never stored. B's
// micro-panels are packed straight from the image, and for the input gradient each C tile is
// added straight into the image gradient (col2im as the GEMM's epilogue). Compiled three times
// like GEMMKernel.swift (same loops and micro-kernel), so it exports functions over raw
// pointers and Ints only.
//
// Image geometry: element (n, c, y, x) at n*bs + c*cs + y*w + x (Tensor's ImageLayout), h×w
// planes, square kernel kk, zero padding pad, stride 1, output size = input size.
// The virtual im2col matrix (Tensor/Im2Col.swift keeps the explicit one as the reference):
//   col[r, q] = X(n, c, y + ky - pad, x + kx - pad), 0 outside the image,
//   r = (c*kk + ky)*kk + kx (row; the reduction of the forward GEMM), q = (n*h + y)*w + x.
//
// Fast path (full micro-panels): when the pixels of one channel are contiguous across the batch
// (CNHW, or a single channel) or a panel lies within one image, col[r, q..q+nr) is the image
// at q + (ky-pad)*w + (kx-pad) masked by where the tap falls inside the image: two vector
// loads and two ANDs per panel row. The masks (per tap and pixel of one image plane, wrapped
// around so any run of up to kc pixels is contiguous) are computed once per call, on the stack.
// Elsewhere (partial panels, reads that would leave the allowed range) the general path walks
// the pixels in segments, each within one image row (n, y): a shifted copy of an image row with
// zeros at the edges.

/// Most kernel taps (kk*kk) the mask buffers hold; larger kernels take the general path.
@inline(__always) var maxTaps: Int { 25 }

@inline(__always)
func loadBits(_ p: UnsafeRawPointer) -> VecBits { p.loadUnaligned(as: VecBits.self) }

/// masks[t*count + j] = all ones if tap t = (ky, kx) of pixel qs + j falls inside its image, else
/// 0. Vector compares on `lanes` pixels at a time: for the first layer (9 taps, K = 9) the
/// scalar form cost more than the GEMM.
@inline(__always)
func tapMasks(_ qs: Int, _ count: Int, _ h: Int, _ w: Int, _ kk: Int, _ pad: Int, _ masks: UnsafeMutablePointer<UInt32>) {
    let lanes = VecBits.scalarCount, plane = h * w
    var y = (qs % plane) / w, x = qs % w
    var j = 0
    while j < count {
        var ys = VecInt(), xs = VecInt()
        for i in 0..<lanes {
            ys[i] = Int32(truncatingIfNeeded: y); xs[i] = Int32(truncatingIfNeeded: x)
            x += 1
            if x == w { x = 0; y += 1; if y == h { y = 0 } }
        }
        let tail = min(lanes, count - j)
        for ky in 0..<kk {
            let sy = ys &+ Int32(truncatingIfNeeded: ky - pad)
            let rowOK = (sy .>= 0) .& (sy .< Int32(truncatingIfNeeded: h))
            for kx in 0..<kk {
                let sx = xs &+ Int32(truncatingIfNeeded: kx - pad)
                let ok = rowOK .& (sx .>= 0) .& (sx .< Int32(truncatingIfNeeded: w))
                let bits = VecBits(repeating: 0).replacing(with: ~0, where: ok)
                let dst = masks + (ky * kk + kx) * count + j
                if tail == lanes {
                    UnsafeMutableRawPointer(dst).storeBytes(of: bits, as: VecBits.self)
                } else {
                    for i in 0..<tail { dst[i] = bits[i] }
                }
            }
        }
        j += lanes
    }
}

/// Entries per tap in the mask table: one image plane plus a kc block of wrap-around.
@inline(__always) func maskSpan(_ h: Int, _ w: Int) -> Int { h * w + blockKC }
/// Largest mask table (entries) kept on the stack; larger images take the general path.
@inline(__always) var maxMaskEntries: Int { 16384 }

/// Calls `body` with the tap-mask table (masks[t*maskSpan + i] for pixel i mod h*w), or with
/// nil when the kernel or the image is too large for it.
@inline(__always)
func withTapMasks(_ h: Int, _ w: Int, _ kk: Int, _ pad: Int, _ body: (UnsafePointer<UInt32>?) -> Void) {
    let taps = kk * kk, span = maskSpan(h, w)
    guard taps <= maxTaps, taps * span <= maxMaskEntries else { body(nil); return }
    withUnsafeTemporaryAllocation(of: UInt32.self, capacity: taps * span) { buffer in
        guard let base = buffer.baseAddress else { body(nil); return }
        tapMasks(0, span, h, w, kk, pad, base)
        body(UnsafePointer(base))
    }
}

/// The range of flat offsets a vector access for channel c may touch, for a run of pixels
/// starting at qs: the whole channel across the batch when bs == plane, else one image's plane;
/// nil when the run spans images and they are not contiguous.
@inline(__always)
func channelWindow(_ qs: Int, _ run: Int, _ c: Int, _ batch: Int, _ plane: Int, _ bs: Int, _ cs: Int)
    -> (pix: Int, lo: Int, hi: Int)? {
    if bs == plane { return (qs, c * cs, c * cs + batch * plane) }
    let n0 = qs / plane
    guard (qs + run - 1) / plane == n0 else { return nil }
    let lo = n0 * bs + c * cs
    return (lo + qs - n0 * plane - c * cs, lo, lo + plane)
}

/// Packs col[p0 ..< p0+kc, q0+j0 ..< q0+j0+nc] into nr-column micro-panels (packB's layout).
@inline(__always)
func packBIm2col(_ x: UnsafePointer<Float>, _ batch: Int, _ h: Int, _ w: Int, _ bs: Int, _ cs: Int, _ kk: Int,
                 _ pad: Int, _ p0: Int, _ kc: Int, _ qStart: Int, _ nc: Int, _ out: UnsafeMutablePointer<Float>,
                 _ masks: UnsafePointer<UInt32>?) {
    let nr = tileNR, half = nr / 2, plane = h * w, taps = kk * kk, span = maskSpan(h, w)
    var panel = 0
    while panel < nc {
        let cols = min(nr, nc - panel)
        let dst = out + panel * kc
        let qs = qStart + panel
        if let masks, cols == nr, bs == plane || qs / plane == (qs + nr - 1) / plane {
            // Channel-relative pixel offset of the panel and the range its reads may touch.
            let contiguous = bs == plane, image = contiguous ? 0 : qs / plane
            let pixelBase = contiguous ? qs : image * bs + qs % plane
            let lo = contiguous ? 0 : image * bs, hi = contiguous ? batch * plane : image * bs + plane
            let mq = masks + qs % plane
            var c = p0 / taps, t = p0 % taps
            var ky = t / kk, kx = t - ky * kk
            for p in 0..<kc {
                let d = dst + p * nr, m = mq + t * span
                let rel = pixelBase + (ky - pad) * w + (kx - pad), src = x + c * cs + rel
                if rel >= lo && rel + nr <= hi {
                    let v0 = loadBits(src) & loadBits(m), v1 = loadBits(src + half) & loadBits(m + half)
                    UnsafeMutableRawPointer(d).storeBytes(of: v0, as: VecBits.self)
                    UnsafeMutableRawPointer(d + half).storeBytes(of: v1, as: VecBits.self)
                } else {
                    for j in 0..<nr { d[j] = m[j] != 0 ? src[j] : 0 }
                }
                t += 1; kx += 1
                if kx == kk { kx = 0; ky += 1 }
                if t == taps { t = 0; ky = 0; kx = 0; c += 1 }
            }
            panel += nr
            continue
        }
        let n0 = qs / plane, y0 = (qs % plane) / w, x0 = qs % w
        var c = p0 / (kk * kk), ky = (p0 / kk) % kk, kx = p0 % kk
        for p in 0..<kc {
            let d = dst + p * nr
            let dy = ky - pad, dx = kx - pad
            let chan = x + c * cs
            var jj = 0, n = n0, y = y0, xs = x0
            while jj < cols {
                let len = min(w - xs, cols - jj), e = xs + len
                let seg = d + jj                       // seg[xx - xs] for xx in xs..<e
                let sy = y + dy
                if sy < 0 || sy >= h {
                    for i in 0..<len { seg[i] = 0 }
                } else {
                    let src = chan + n * bs + sy * w    // src[xx + dx]
                    let lo = min(max(xs, -dx), e), hi = max(min(e, w - dx), lo)
                    for xx in xs..<lo { seg[xx - xs] = 0 }
                    for xx in lo..<hi { seg[xx - xs] = src[xx + dx] }
                    for xx in hi..<e { seg[xx - xs] = 0 }
                }
                jj += len; xs += len
                if xs == w { xs = 0; y += 1; if y == h { y = 0; n += 1 } }
            }
            for j in cols..<nr { d[j] = 0 }
            kx += 1
            if kx == kk { kx = 0; ky += 1; if ky == kk { ky = 0; c += 1 } }
        }
        panel += nr
    }
}

/// Packs colᵀ[p0 ..< p0+kc, r0+j0 ..< r0+j0+nc] (element (q, r) = col[r, q]) into nr-column
/// micro-panels: one column r at a time, walking the pixels q in row segments.
@inline(__always)
func packBIm2colT(_ x: UnsafePointer<Float>, _ batch: Int, _ h: Int, _ w: Int, _ bs: Int, _ cs: Int, _ kk: Int,
                  _ pad: Int, _ p0: Int, _ kc: Int, _ rStart: Int, _ nc: Int, _ out: UnsafeMutablePointer<Float>,
                  _ masks: UnsafePointer<UInt32>?) {
    let nr = tileNR, plane = h * w, lanes = VecBits.scalarCount, span = maskSpan(h, w)
    let n0 = p0 / plane, y0 = (p0 % plane) / w, x0 = p0 % w
    // Fast path: the pixel block is contiguous per channel (its masks are contiguous too).
    let fast = kc <= blockKC && (bs == plane || p0 / plane == (p0 + kc - 1) / plane)
    var panel = 0
    while panel < nc {
        let cols = min(nr, nc - panel)
        let dst = out + panel * kc
        if cols < nr { dst.initialize(repeating: 0, count: nr * kc) }
        var groupsDone = 0                         // bit g: columns g*lanes ..< (g+1)*lanes packed
        #if GEMM_AVX512
        if fast, let masks {
            var g = 0
            while (g + 1) * lanes <= cols {
                if packColumnsTransposed(x, batch, h, w, bs, cs, kk, pad, p0, kc, rStart + panel + g * lanes,
                                         masks, dst + g * lanes) {
                    groupsDone |= 1 << g
                }
                g += 1
            }
        }
        #endif
        for jj in 0..<cols where groupsDone & (1 << (jj / lanes)) == 0 {
            let r = rStart + panel + jj
            let c = r / (kk * kk), ky = (r / kk) % kk, kx = r % kk
            let dy = ky - pad, dx = kx - pad
            let chan = x + c * cs
            let d = dst + jj                           // d[pp * nr] for pixel p0 + pp
            if fast, let masks, let win = channelWindow(p0, kc, c, batch, plane, bs, cs) {
                let start = win.pix + c * cs + dy * w + dx, m = masks + (ky * kk + kx) * span + p0 % plane
                var pp = 0
                if start >= win.lo && start + kc <= win.hi {
                    // Vector loads and masks; the transposed stores stay scalar (vectorised
                    // they became scatters, slower than scalar stores on this CPU).
                    while pp + lanes <= kc {
                        let v = loadBits(x + start + pp) & loadBits(m + pp)
                        for i in 0..<lanes { (d + (pp + i) * nr).withMemoryRebound(to: UInt32.self, capacity: 1) { $0.pointee = v[i] } }
                        pp += lanes
                    }
                }
                while pp < kc { d[pp * nr] = m[pp] != 0 ? x[start + pp] : 0; pp += 1 }
                continue
            }
            var pp = 0, n = n0, y = y0, xs = x0
            while pp < kc {
                let len = min(w - xs, kc - pp), e = xs + len
                let seg = d + pp * nr                  // seg[(xx - xs) * nr]
                let sy = y + dy
                if sy < 0 || sy >= h {
                    for i in 0..<len { seg[i * nr] = 0 }
                } else {
                    let src = chan + n * bs + sy * w
                    let lo = min(max(xs, -dx), e), hi = max(min(e, w - dx), lo)
                    for xx in xs..<lo { seg[(xx - xs) * nr] = 0 }
                    for xx in lo..<hi { seg[(xx - xs) * nr] = src[xx + dx] }
                    for xx in hi..<e { seg[(xx - xs) * nr] = 0 }
                }
                pp += len; xs += len
                if xs == w { xs = 0; y += 1; if y == h { y = 0; n += 1 } }
            }
        }
        panel += nr
    }
}

#if GEMM_AVX512
/// Stores the transpose of the 16×16 block whose rows are v0...v15: row i of the result (column
/// i of the block) goes to d + i*ld. Four butterfly stages of two-source shuffles (LLVM emits
/// vpermt2ps), instead of 256 scalar stores.
@inline(__always)
func transposeStore16(_ v0: Vec, _ v1: Vec, _ v2: Vec, _ v3: Vec, _ v4: Vec, _ v5: Vec, _ v6: Vec, _ v7: Vec, _ v8: Vec, _ v9: Vec, _ v10: Vec, _ v11: Vec, _ v12: Vec, _ v13: Vec, _ v14: Vec, _ v15: Vec,
                      _ d: UnsafeMutablePointer<Float>, _ ld: Int) {
    var r0 = v0; var r1 = v1; var r2 = v2; var r3 = v3; var r4 = v4; var r5 = v5; var r6 = v6; var r7 = v7
    var r8 = v8; var r9 = v9; var r10 = v10; var r11 = v11; var r12 = v12; var r13 = v13; var r14 = v14; var r15 = v15
    do { let a = r0, c = r8
        r0 = Vec(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7])
        r8 = Vec(a[8], a[9], a[10], a[11], a[12], a[13], a[14], a[15], c[8], c[9], c[10], c[11], c[12], c[13], c[14], c[15]) }
    do { let a = r1, c = r9
        r1 = Vec(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7])
        r9 = Vec(a[8], a[9], a[10], a[11], a[12], a[13], a[14], a[15], c[8], c[9], c[10], c[11], c[12], c[13], c[14], c[15]) }
    do { let a = r2, c = r10
        r2 = Vec(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7])
        r10 = Vec(a[8], a[9], a[10], a[11], a[12], a[13], a[14], a[15], c[8], c[9], c[10], c[11], c[12], c[13], c[14], c[15]) }
    do { let a = r3, c = r11
        r3 = Vec(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7])
        r11 = Vec(a[8], a[9], a[10], a[11], a[12], a[13], a[14], a[15], c[8], c[9], c[10], c[11], c[12], c[13], c[14], c[15]) }
    do { let a = r4, c = r12
        r4 = Vec(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7])
        r12 = Vec(a[8], a[9], a[10], a[11], a[12], a[13], a[14], a[15], c[8], c[9], c[10], c[11], c[12], c[13], c[14], c[15]) }
    do { let a = r5, c = r13
        r5 = Vec(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7])
        r13 = Vec(a[8], a[9], a[10], a[11], a[12], a[13], a[14], a[15], c[8], c[9], c[10], c[11], c[12], c[13], c[14], c[15]) }
    do { let a = r6, c = r14
        r6 = Vec(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7])
        r14 = Vec(a[8], a[9], a[10], a[11], a[12], a[13], a[14], a[15], c[8], c[9], c[10], c[11], c[12], c[13], c[14], c[15]) }
    do { let a = r7, c = r15
        r7 = Vec(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7])
        r15 = Vec(a[8], a[9], a[10], a[11], a[12], a[13], a[14], a[15], c[8], c[9], c[10], c[11], c[12], c[13], c[14], c[15]) }
    do { let a = r0, c = r4
        r0 = Vec(a[0], a[1], a[2], a[3], c[0], c[1], c[2], c[3], a[8], a[9], a[10], a[11], c[8], c[9], c[10], c[11])
        r4 = Vec(a[4], a[5], a[6], a[7], c[4], c[5], c[6], c[7], a[12], a[13], a[14], a[15], c[12], c[13], c[14], c[15]) }
    do { let a = r1, c = r5
        r1 = Vec(a[0], a[1], a[2], a[3], c[0], c[1], c[2], c[3], a[8], a[9], a[10], a[11], c[8], c[9], c[10], c[11])
        r5 = Vec(a[4], a[5], a[6], a[7], c[4], c[5], c[6], c[7], a[12], a[13], a[14], a[15], c[12], c[13], c[14], c[15]) }
    do { let a = r2, c = r6
        r2 = Vec(a[0], a[1], a[2], a[3], c[0], c[1], c[2], c[3], a[8], a[9], a[10], a[11], c[8], c[9], c[10], c[11])
        r6 = Vec(a[4], a[5], a[6], a[7], c[4], c[5], c[6], c[7], a[12], a[13], a[14], a[15], c[12], c[13], c[14], c[15]) }
    do { let a = r3, c = r7
        r3 = Vec(a[0], a[1], a[2], a[3], c[0], c[1], c[2], c[3], a[8], a[9], a[10], a[11], c[8], c[9], c[10], c[11])
        r7 = Vec(a[4], a[5], a[6], a[7], c[4], c[5], c[6], c[7], a[12], a[13], a[14], a[15], c[12], c[13], c[14], c[15]) }
    do { let a = r8, c = r12
        r8 = Vec(a[0], a[1], a[2], a[3], c[0], c[1], c[2], c[3], a[8], a[9], a[10], a[11], c[8], c[9], c[10], c[11])
        r12 = Vec(a[4], a[5], a[6], a[7], c[4], c[5], c[6], c[7], a[12], a[13], a[14], a[15], c[12], c[13], c[14], c[15]) }
    do { let a = r9, c = r13
        r9 = Vec(a[0], a[1], a[2], a[3], c[0], c[1], c[2], c[3], a[8], a[9], a[10], a[11], c[8], c[9], c[10], c[11])
        r13 = Vec(a[4], a[5], a[6], a[7], c[4], c[5], c[6], c[7], a[12], a[13], a[14], a[15], c[12], c[13], c[14], c[15]) }
    do { let a = r10, c = r14
        r10 = Vec(a[0], a[1], a[2], a[3], c[0], c[1], c[2], c[3], a[8], a[9], a[10], a[11], c[8], c[9], c[10], c[11])
        r14 = Vec(a[4], a[5], a[6], a[7], c[4], c[5], c[6], c[7], a[12], a[13], a[14], a[15], c[12], c[13], c[14], c[15]) }
    do { let a = r11, c = r15
        r11 = Vec(a[0], a[1], a[2], a[3], c[0], c[1], c[2], c[3], a[8], a[9], a[10], a[11], c[8], c[9], c[10], c[11])
        r15 = Vec(a[4], a[5], a[6], a[7], c[4], c[5], c[6], c[7], a[12], a[13], a[14], a[15], c[12], c[13], c[14], c[15]) }
    do { let a = r0, c = r2
        r0 = Vec(a[0], a[1], c[0], c[1], a[4], a[5], c[4], c[5], a[8], a[9], c[8], c[9], a[12], a[13], c[12], c[13])
        r2 = Vec(a[2], a[3], c[2], c[3], a[6], a[7], c[6], c[7], a[10], a[11], c[10], c[11], a[14], a[15], c[14], c[15]) }
    do { let a = r1, c = r3
        r1 = Vec(a[0], a[1], c[0], c[1], a[4], a[5], c[4], c[5], a[8], a[9], c[8], c[9], a[12], a[13], c[12], c[13])
        r3 = Vec(a[2], a[3], c[2], c[3], a[6], a[7], c[6], c[7], a[10], a[11], c[10], c[11], a[14], a[15], c[14], c[15]) }
    do { let a = r4, c = r6
        r4 = Vec(a[0], a[1], c[0], c[1], a[4], a[5], c[4], c[5], a[8], a[9], c[8], c[9], a[12], a[13], c[12], c[13])
        r6 = Vec(a[2], a[3], c[2], c[3], a[6], a[7], c[6], c[7], a[10], a[11], c[10], c[11], a[14], a[15], c[14], c[15]) }
    do { let a = r5, c = r7
        r5 = Vec(a[0], a[1], c[0], c[1], a[4], a[5], c[4], c[5], a[8], a[9], c[8], c[9], a[12], a[13], c[12], c[13])
        r7 = Vec(a[2], a[3], c[2], c[3], a[6], a[7], c[6], c[7], a[10], a[11], c[10], c[11], a[14], a[15], c[14], c[15]) }
    do { let a = r8, c = r10
        r8 = Vec(a[0], a[1], c[0], c[1], a[4], a[5], c[4], c[5], a[8], a[9], c[8], c[9], a[12], a[13], c[12], c[13])
        r10 = Vec(a[2], a[3], c[2], c[3], a[6], a[7], c[6], c[7], a[10], a[11], c[10], c[11], a[14], a[15], c[14], c[15]) }
    do { let a = r9, c = r11
        r9 = Vec(a[0], a[1], c[0], c[1], a[4], a[5], c[4], c[5], a[8], a[9], c[8], c[9], a[12], a[13], c[12], c[13])
        r11 = Vec(a[2], a[3], c[2], c[3], a[6], a[7], c[6], c[7], a[10], a[11], c[10], c[11], a[14], a[15], c[14], c[15]) }
    do { let a = r12, c = r14
        r12 = Vec(a[0], a[1], c[0], c[1], a[4], a[5], c[4], c[5], a[8], a[9], c[8], c[9], a[12], a[13], c[12], c[13])
        r14 = Vec(a[2], a[3], c[2], c[3], a[6], a[7], c[6], c[7], a[10], a[11], c[10], c[11], a[14], a[15], c[14], c[15]) }
    do { let a = r13, c = r15
        r13 = Vec(a[0], a[1], c[0], c[1], a[4], a[5], c[4], c[5], a[8], a[9], c[8], c[9], a[12], a[13], c[12], c[13])
        r15 = Vec(a[2], a[3], c[2], c[3], a[6], a[7], c[6], c[7], a[10], a[11], c[10], c[11], a[14], a[15], c[14], c[15]) }
    do { let a = r0, c = r1
        r0 = Vec(a[0], c[0], a[2], c[2], a[4], c[4], a[6], c[6], a[8], c[8], a[10], c[10], a[12], c[12], a[14], c[14])
        r1 = Vec(a[1], c[1], a[3], c[3], a[5], c[5], a[7], c[7], a[9], c[9], a[11], c[11], a[13], c[13], a[15], c[15]) }
    do { let a = r2, c = r3
        r2 = Vec(a[0], c[0], a[2], c[2], a[4], c[4], a[6], c[6], a[8], c[8], a[10], c[10], a[12], c[12], a[14], c[14])
        r3 = Vec(a[1], c[1], a[3], c[3], a[5], c[5], a[7], c[7], a[9], c[9], a[11], c[11], a[13], c[13], a[15], c[15]) }
    do { let a = r4, c = r5
        r4 = Vec(a[0], c[0], a[2], c[2], a[4], c[4], a[6], c[6], a[8], c[8], a[10], c[10], a[12], c[12], a[14], c[14])
        r5 = Vec(a[1], c[1], a[3], c[3], a[5], c[5], a[7], c[7], a[9], c[9], a[11], c[11], a[13], c[13], a[15], c[15]) }
    do { let a = r6, c = r7
        r6 = Vec(a[0], c[0], a[2], c[2], a[4], c[4], a[6], c[6], a[8], c[8], a[10], c[10], a[12], c[12], a[14], c[14])
        r7 = Vec(a[1], c[1], a[3], c[3], a[5], c[5], a[7], c[7], a[9], c[9], a[11], c[11], a[13], c[13], a[15], c[15]) }
    do { let a = r8, c = r9
        r8 = Vec(a[0], c[0], a[2], c[2], a[4], c[4], a[6], c[6], a[8], c[8], a[10], c[10], a[12], c[12], a[14], c[14])
        r9 = Vec(a[1], c[1], a[3], c[3], a[5], c[5], a[7], c[7], a[9], c[9], a[11], c[11], a[13], c[13], a[15], c[15]) }
    do { let a = r10, c = r11
        r10 = Vec(a[0], c[0], a[2], c[2], a[4], c[4], a[6], c[6], a[8], c[8], a[10], c[10], a[12], c[12], a[14], c[14])
        r11 = Vec(a[1], c[1], a[3], c[3], a[5], c[5], a[7], c[7], a[9], c[9], a[11], c[11], a[13], c[13], a[15], c[15]) }
    do { let a = r12, c = r13
        r12 = Vec(a[0], c[0], a[2], c[2], a[4], c[4], a[6], c[6], a[8], c[8], a[10], c[10], a[12], c[12], a[14], c[14])
        r13 = Vec(a[1], c[1], a[3], c[3], a[5], c[5], a[7], c[7], a[9], c[9], a[11], c[11], a[13], c[13], a[15], c[15]) }
    do { let a = r14, c = r15
        r14 = Vec(a[0], c[0], a[2], c[2], a[4], c[4], a[6], c[6], a[8], c[8], a[10], c[10], a[12], c[12], a[14], c[14])
        r15 = Vec(a[1], c[1], a[3], c[3], a[5], c[5], a[7], c[7], a[9], c[9], a[11], c[11], a[13], c[13], a[15], c[15]) }
    UnsafeMutableRawPointer(d + 0 * ld).storeBytes(of: r0, as: Vec.self)
    UnsafeMutableRawPointer(d + 1 * ld).storeBytes(of: r1, as: Vec.self)
    UnsafeMutableRawPointer(d + 2 * ld).storeBytes(of: r2, as: Vec.self)
    UnsafeMutableRawPointer(d + 3 * ld).storeBytes(of: r3, as: Vec.self)
    UnsafeMutableRawPointer(d + 4 * ld).storeBytes(of: r4, as: Vec.self)
    UnsafeMutableRawPointer(d + 5 * ld).storeBytes(of: r5, as: Vec.self)
    UnsafeMutableRawPointer(d + 6 * ld).storeBytes(of: r6, as: Vec.self)
    UnsafeMutableRawPointer(d + 7 * ld).storeBytes(of: r7, as: Vec.self)
    UnsafeMutableRawPointer(d + 8 * ld).storeBytes(of: r8, as: Vec.self)
    UnsafeMutableRawPointer(d + 9 * ld).storeBytes(of: r9, as: Vec.self)
    UnsafeMutableRawPointer(d + 10 * ld).storeBytes(of: r10, as: Vec.self)
    UnsafeMutableRawPointer(d + 11 * ld).storeBytes(of: r11, as: Vec.self)
    UnsafeMutableRawPointer(d + 12 * ld).storeBytes(of: r12, as: Vec.self)
    UnsafeMutableRawPointer(d + 13 * ld).storeBytes(of: r13, as: Vec.self)
    UnsafeMutableRawPointer(d + 14 * ld).storeBytes(of: r14, as: Vec.self)
    UnsafeMutableRawPointer(d + 15 * ld).storeBytes(of: r15, as: Vec.self)
}
#endif

#if GEMM_AVX512
/// The fast path of packBIm2colT for 16 columns r0 ..< r0+16 at once: 16 masked vector loads
/// (one per column) per 16 pixels, transposed in registers into the panel (leading dimension
/// nr). False (nothing written) if a column's window leaves the allowed range.
@inline(__always)
func packColumnsTransposed(_ x: UnsafePointer<Float>, _ batch: Int, _ h: Int, _ w: Int, _ bs: Int, _ cs: Int,
                           _ kk: Int, _ pad: Int, _ p0: Int, _ kc: Int, _ r0: Int, _ masks: UnsafePointer<UInt32>,
                           _ d: UnsafeMutablePointer<Float>) -> Bool {
    let nr = tileNR, plane = h * w, span = maskSpan(h, w)
    return withUnsafeTemporaryAllocation(of: Int.self, capacity: 32) { buffer -> Bool in
        guard let starts = buffer.baseAddress else { return false }
        let maskOffsets = starts + 16
        for i in 0..<16 {
            let r = r0 + i
            let c = r / (kk * kk), ky = (r / kk) % kk, kx = r % kk
            guard let win = channelWindow(p0, kc, c, batch, plane, bs, cs) else { return false }
            let start = win.pix + c * cs + (ky - pad) * w + (kx - pad)
            guard start >= win.lo && start + kc <= win.hi else { return false }
            starts[i] = start
            maskOffsets[i] = (ky * kk + kx) * span + p0 % plane
        }
        @inline(__always) func row(_ i: Int, _ pp: Int) -> Vec {
            unsafeBitCast(loadBits(x + starts[i] + pp) & loadBits(masks + maskOffsets[i] + pp), to: Vec.self)
        }
        var pp = 0
        while pp + 16 <= kc {
            transposeStore16(row(0, pp), row(1, pp), row(2, pp), row(3, pp), row(4, pp), row(5, pp), row(6, pp),
                             row(7, pp), row(8, pp), row(9, pp), row(10, pp), row(11, pp), row(12, pp), row(13, pp),
                             row(14, pp), row(15, pp), d + pp * nr, nr)
            pp += 16
        }
        while pp < kc {
            for i in 0..<16 { d[pp * nr + i] = masks[maskOffsets[i] + pp] != 0 ? x[starts[i] + pp] : 0 }
            pp += 1
        }
        return true
    }
}
#endif

/// Adds a rows×cols tile (leading dimension nr) of dCol, rows r0..., pixels q0..., into dX:
/// dX(n, c, y + ky - pad, x + kx - pad) += dCol[(c, ky, kx), (n, y, x)] (col2im).
/// Fast path: a full-width tile (masks from withTapMasks) whose read-modify-write stays inside
/// the caller's own pixels [ownLo, ownHi) of the channel (other workers own the rest).
@inline(__always)
func scatterCol2im(_ tile: UnsafePointer<Float>, _ rows: Int, _ cols: Int, _ rStart: Int, _ qStart: Int,
                   _ dxOut: UnsafeMutablePointer<Float>, _ batch: Int, _ h: Int, _ w: Int, _ bs: Int, _ cs: Int,
                   _ kk: Int, _ pad: Int, _ masks: UnsafePointer<UInt32>?, _ ownLo: Int, _ ownHi: Int) {
    // Divisions once per tile (they cost as much as the adds when done per row): the rows'
    // (c, ky, kx) advance incrementally, the pixel's (n, y, x) only on the general path.
    let nr = tileNR, half = nr / 2, plane = h * w, span = maskSpan(h, w)
    let taps = kk * kk, qInPlane = qStart % plane
    let contiguous = bs == plane                  // else the tile lies within one image (or goes slow)
    let image = contiguous ? 0 : qStart / plane
    let fast = masks != nil && cols == nr && (contiguous || (qStart + nr - 1) / plane == image)
    let pixelBase = contiguous ? qStart : image * bs + qInPlane
    var c = rStart / taps, t0 = rStart % taps
    for t in 0..<rows {
        let ky = t0 / kk, kx = t0 - (t0 / kk) * kk
        let dy = ky - pad, dx = kx - pad
        let chan = dxOut + c * cs
        let src = tile + t * nr
        defer { t0 += 1; if t0 == taps { t0 = 0; c += 1 } }
        if fast, let masks {
            let start = pixelBase + dy * w + dx       // relative to the channel
            // Own pixels only: [ownLo, ownHi) in the channel's pixel numbering (bs == plane) or
            // the tile's own image (the caller splits work at image boundaries).
            let lo = contiguous ? ownLo : image * bs, hi = contiguous ? ownHi : image * bs + plane
            if start >= lo && start + nr <= hi {
                let m = masks + t0 * span + qInPlane
                let s0 = loadBits(src) & loadBits(m), s1 = loadBits(src + half) & loadBits(m + half)
                let p = UnsafeMutableRawPointer(chan + start)
                let v0 = p.loadUnaligned(as: Vec.self) + unsafeBitCast(s0, to: Vec.self)
                let v1 = (p + half * 4).loadUnaligned(as: Vec.self) + unsafeBitCast(s1, to: Vec.self)
                p.storeBytes(of: v0, as: Vec.self)
                (p + half * 4).storeBytes(of: v1, as: Vec.self)
                continue
            }
        }
        let n0 = qStart / plane, y0 = qInPlane / w, x0 = qStart % w
        var jj = 0, n = n0, y = y0, xs = x0
        while jj < cols {
            let len = min(w - xs, cols - jj), e = xs + len
            let ty = y + dy
            if ty >= 0 && ty < h {
                let dst = chan + n * bs + ty * w       // dst[xx + dx] += src[jj + xx - xs]
                let lo = min(max(xs, -dx), e), hi = max(min(e, w - dx), lo)
                for xx in lo..<hi { dst[xx + dx] += src[jj + xx - xs] }
            }
            jj += len; xs += len
            if xs == w { xs = 0; y += 1; if y == h { y = 0; n += 1 } }
        }
    }
}

/// C[m×n] = A · col[:, q0 ..< q0+n] (or += when `accumulate`), k = C*kk*kk: the forward
/// convolution of image x (geometry above) without an im2col buffer.
public func gemmIm2colSerial(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, aRS: Int, aCS: Int,
                             image x: UnsafePointer<Float>, batch: Int, h: Int, w: Int, bs: Int, cs: Int,
                             kernel kk: Int, pad: Int, q0: Int, c: UnsafeMutablePointer<Float>, ldc: Int,
                             accumulate: Bool,
                             packA pa: UnsafeMutablePointer<Float>, packB pb: UnsafeMutablePointer<Float>) {
    if m <= 0 || n <= 0 || k <= 0 { return }
    withTapMasks(h, w, kk, pad) { masks in
        gemmBlocked(m: m, n: n, k: k, a: a, aRS: aRS, aCS: aCS, c: c, ldc: ldc, accumulate: accumulate,
                    pa: pa, pb: pb, scatter: false,
                    packBlock: { p0, kc, j0, nc, out in
                        packBIm2col(x, batch, h, w, bs, cs, kk, pad, p0, kc, q0 + j0, nc, out, masks)
                    },
                    storeTile: { _, _, _, _, _ in })
    }
}

/// C[m×n] = A · colᵀ[:, r0 ..< r0+n] (or += when `accumulate`), k = N*h*w pixels: the weight
/// gradient dY·colᵀ of image x without an im2col buffer.
public func gemmIm2colTSerial(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, aRS: Int, aCS: Int,
                              image x: UnsafePointer<Float>, batch: Int, h: Int, w: Int, bs: Int, cs: Int,
                              kernel kk: Int, pad: Int, r0: Int, c: UnsafeMutablePointer<Float>, ldc: Int,
                              accumulate: Bool,
                              packA pa: UnsafeMutablePointer<Float>, packB pb: UnsafeMutablePointer<Float>) {
    if m <= 0 || n <= 0 || k <= 0 { return }
    withTapMasks(h, w, kk, pad) { masks in
        gemmBlocked(m: m, n: n, k: k, a: a, aRS: aRS, aCS: aCS, c: c, ldc: ldc, accumulate: accumulate,
                    pa: pa, pb: pb, scatter: false,
                    packBlock: { p0, kc, j0, nc, out in
                        packBIm2colT(x, batch, h, w, bs, cs, kk, pad, p0, kc, r0 + j0, nc, out, masks)
                    },
                    storeTile: { _, _, _, _, _ in })
    }
}

/// dX += col2im(A·B) for dCol rows r0 ..< r0+m and pixels q0 ..< q0+n (A: m×k, B: k×n with
/// strides as in gemmSerial): the input gradient without a dCol buffer. dX has the geometry
/// above; rows/pixels of different calls may run concurrently only if they touch disjoint
/// channels (split rows at multiples of kk*kk) or images (split pixels at multiples of h*w).
public func gemmCol2imSerial(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, aRS: Int, aCS: Int,
                             b: UnsafePointer<Float>, bRS: Int, bCS: Int,
                             imageGrad dX: UnsafeMutablePointer<Float>, batch: Int, h: Int, w: Int, bs: Int, cs: Int,
                             kernel kk: Int, pad: Int, r0: Int, q0: Int,
                             packA pa: UnsafeMutablePointer<Float>, packB pb: UnsafeMutablePointer<Float>) {
    if m <= 0 || n <= 0 || k <= 0 { return }
    withTapMasks(h, w, kk, pad) { masks in
        gemmBlocked(m: m, n: n, k: k, a: a, aRS: aRS, aCS: aCS, c: dX, ldc: 0, accumulate: true,
                    pa: pa, pb: pb, scatter: true,
                    packBlock: { p0, kc, j0, nc, out in packB(b, bRS, bCS, p0, kc, j0, nc, out) },
                    storeTile: { tile, i0, rows, j0, cols in
                        scatterCol2im(tile, rows, cols, r0 + i0, q0 + j0, dX, batch, h, w, bs, cs, kk, pad,
                                      masks, q0, q0 + n)
                    })
    }
}
