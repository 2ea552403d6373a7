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
            let mq = masks + qs % plane
            var c = p0 / taps, t = p0 % taps
            for p in 0..<kc {
                let d = dst + p * nr, m = mq + t * span
                if let win = channelWindow(qs, nr, c, batch, plane, bs, cs) {
                    let start = win.pix + c * cs + (t / kk - pad) * w + (t % kk - pad)
                    if start >= win.lo && start + nr <= win.hi {
                        let v0 = loadBits(x + start) & loadBits(m), v1 = loadBits(x + start + half) & loadBits(m + half)
                        UnsafeMutableRawPointer(d).storeBytes(of: v0, as: VecBits.self)
                        UnsafeMutableRawPointer(d + half).storeBytes(of: v1, as: VecBits.self)
                    } else {
                        for j in 0..<nr { d[j] = m[j] != 0 ? x[start + j] : 0 }
                    }
                }
                t += 1
                if t == taps { t = 0; c += 1 }
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
        for jj in 0..<cols {
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

/// Adds a rows×cols tile (leading dimension nr) of dCol, rows r0..., pixels q0..., into dX:
/// dX(n, c, y + ky - pad, x + kx - pad) += dCol[(c, ky, kx), (n, y, x)] (col2im).
/// Fast path: a full-width tile (masks from withTapMasks) whose read-modify-write stays inside
/// the caller's own pixels [ownLo, ownHi) of the channel (other workers own the rest).
@inline(__always)
func scatterCol2im(_ tile: UnsafePointer<Float>, _ rows: Int, _ cols: Int, _ rStart: Int, _ qStart: Int,
                   _ dxOut: UnsafeMutablePointer<Float>, _ batch: Int, _ h: Int, _ w: Int, _ bs: Int, _ cs: Int,
                   _ kk: Int, _ pad: Int, _ masks: UnsafePointer<UInt32>?, _ ownLo: Int, _ ownHi: Int) {
    let nr = tileNR, half = nr / 2, plane = h * w, span = maskSpan(h, w)
    let n0 = qStart / plane, y0 = (qStart % plane) / w, x0 = qStart % w
    for t in 0..<rows {
        let r = rStart + t
        let c = r / (kk * kk), ky = (r / kk) % kk, kx = r % kk
        let dy = ky - pad, dx = kx - pad
        let chan = dxOut + c * cs
        let src = tile + t * nr
        if let masks, cols == nr, let win = channelWindow(qStart, nr, c, batch, plane, bs, cs) {
            let start = win.pix + c * cs + dy * w + dx
            // Own pixels only: [ownLo, ownHi) in the channel's pixel numbering (bs == plane) or
            // the tile's own image (the caller splits work at image boundaries).
            let lo = bs == plane ? c * cs + ownLo : win.lo, hi = bs == plane ? c * cs + ownHi : win.hi
            if start >= lo && start + nr <= hi {
                let m = masks + (ky * kk + kx) * span + qStart % plane
                let s0 = loadBits(src) & loadBits(m), s1 = loadBits(src + half) & loadBits(m + half)
                let p = UnsafeMutableRawPointer(chan - c * cs + start)
                let v0 = p.loadUnaligned(as: Vec.self) + unsafeBitCast(s0, to: Vec.self)
                let v1 = (p + half * 4).loadUnaligned(as: Vec.self) + unsafeBitCast(s1, to: Vec.self)
                p.storeBytes(of: v0, as: Vec.self)
                (p + half * 4).storeBytes(of: v1, as: Vec.self)
                continue
            }
        }
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
