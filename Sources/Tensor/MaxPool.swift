// 2×2 max-pool, stride 2, floor mode (odd sizes drop the last row/column: 7→3), like PyTorch's
// MaxPool2d(2).
//   input  X: N×C×H×W in layout x;   output Y: N×C×(H/2)×(W/2) in layout y.
// Backward routes each dY to the FIRST window position holding the maximum (row-major order:
// PyTorch's tie rule), found again by comparing X with Y, so forward stores no indices.
// With `reluMasked`, dY is dropped where Y <= 0: that fuses the backward of a ReLU applied
// before the pool (ReLU passes gradient only where its output is > 0, and the pooled value is
// one of those outputs).

/// Y = maxpool2(X). SIMD over output columns; planes split across `threads`.
public func maxPool2Forward(_ input: UnsafePointer<Float>, _ x: ImageLayout, output: UnsafeMutablePointer<Float>,
                            _ y: ImageLayout, threads: Int) {
    let src = UnsafeTransfer(input), dst = UnsafeTransfer(output)
    let planes = x.channels * x.batch, parts = min(threads, planes)
    Parallel.run(parts) { part in
        for p in Parallel.range(part, of: parts, count: planes) {
            let c = p / x.batch, n = p % x.batch
            let ip = src.value + n * x.batchStride + c * x.channelStride
            let op = dst.value + n * y.batchStride + c * y.channelStride
            for i in 0..<y.height {
                pool2Row(ip + 2 * i * x.width, ip + (2 * i + 1) * x.width, op + i * y.width, y.width)
            }
        }
    }
}

@inline(__always)
private func pool2Row(_ r0: UnsafePointer<Float>, _ r1: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>,
                      _ width: Int) {
    // Branch-free scalar maxima (SIMD pointwiseMax is not inlined in the baseline module).
    for j in 0..<width {
        let a = r0[2 * j], b = r0[2 * j + 1], c = r1[2 * j], d = r1[2 * j + 1]
        let ab = b > a ? b : a, cd = d > c ? d : c
        out[j] = cd > ab ? cd : ab
    }
}

/// dX: each dY goes to the first position of its window equal to the window's max (Y); every
/// other element of dX, including rows/columns floor mode dropped, is 0. `reluMasked` drops
/// dY where Y <= 0. dX is overwritten in layout x.
public func maxPool2Backward(input: UnsafePointer<Float>, _ x: ImageLayout, output: UnsafePointer<Float>,
                             outGrad: UnsafePointer<Float>, _ y: ImageLayout, inputGrad: UnsafeMutablePointer<Float>,
                             reluMasked: Bool, threads: Int) {
    let xs = UnsafeTransfer(input), ys = UnsafeTransfer(output), gs = UnsafeTransfer(outGrad)
    let ds = UnsafeTransfer(inputGrad)
    let planes = x.channels * x.batch, parts = min(threads, planes)
    Parallel.run(parts) { part in
        for p in Parallel.range(part, of: parts, count: planes) {
            let c = p / x.batch, n = p % x.batch
            let xo = n * x.batchStride + c * x.channelStride, yo = n * y.batchStride + c * y.channelStride
            let ip = xs.value + xo, dp = ds.value + xo
            let op = ys.value + yo, gp = gs.value + yo
            // Every element of dX is written once: the 4 positions of each window, then the row
            // and column floor mode dropped. The first-maximum rule is a chain of selects (the
            // gradient left after each position) on 8 windows at a time: the winner is random,
            // and the branches the scalar form compiled to mispredicted (12% of a 1-thread step).
            for i in 0..<y.height {
                let r0 = 2 * i * x.width, r1 = r0 + x.width
                pool2BackwardRow(ip + r0, ip + r1, op + i * y.width, gp + i * y.width, dp + r0, dp + r1,
                                 y.width, reluMasked)
                if x.width & 1 == 1 { dp[r0 + x.width - 1] = 0; dp[r1 + x.width - 1] = 0 }
            }
            if x.height & 1 == 1 { (dp + (x.height - 1) * x.width).initialize(repeating: 0, count: x.width) }
        }
    }
}

/// One output row of maxPool2Backward: windows over input rows x0/x1, their maxima `m` and
/// gradients `g`, writing dX rows d0/d1 (2*width floats each).
@inline(__always)
private func pool2BackwardRow(_ x0: UnsafePointer<Float>, _ x1: UnsafePointer<Float>, _ m: UnsafePointer<Float>,
                              _ g: UnsafePointer<Float>, _ d0: UnsafeMutablePointer<Float>,
                              _ d1: UnsafeMutablePointer<Float>, _ width: Int, _ reluMasked: Bool) {
    typealias V8 = SIMD8<Float>
    typealias V16 = SIMD16<Float>
    let zero = V8()
    var j = 0
    while j + 8 <= width {
        let top = UnsafeRawPointer(x0 + 2 * j).loadUnaligned(as: V16.self)
        let bottom = UnsafeRawPointer(x1 + 2 * j).loadUnaligned(as: V16.self)
        let mv = UnsafeRawPointer(m + j).loadUnaligned(as: V8.self)
        var gv = UnsafeRawPointer(g + j).loadUnaligned(as: V8.self)
        if reluMasked { gv = gv.replacing(with: zero, where: .!(mv .> zero)) }
        let ea = top.evenHalf .== mv
        let da = zero.replacing(with: gv, where: ea); gv = gv.replacing(with: zero, where: ea)
        let eb = top.oddHalf .== mv
        let db = zero.replacing(with: gv, where: eb); gv = gv.replacing(with: zero, where: eb)
        let ec = bottom.evenHalf .== mv
        let dc = zero.replacing(with: gv, where: ec); gv = gv.replacing(with: zero, where: ec)
        UnsafeMutableRawPointer(d0 + 2 * j).storeBytes(of: interleave(da, db), as: V16.self)
        UnsafeMutableRawPointer(d1 + 2 * j).storeBytes(of: interleave(dc, gv), as: V16.self)
        j += 8
    }
    // The rest (most windows when rows are short: 7, 3 or 1 wide) in integer masks on bit
    // patterns: float compares compiled to mispredicted branches here. With the ReLU mask only a
    // window whose max m is > 0 passes a gradient, and for such m float equality is bit
    // equality (m is one of the four inputs, not ±0), so integer compares are exact.
    if reluMasked {
        let xb0 = UnsafeRawPointer(x0).assumingMemoryBound(to: UInt32.self)
        let xb1 = UnsafeRawPointer(x1).assumingMemoryBound(to: UInt32.self)
        let mb = UnsafeRawPointer(m).assumingMemoryBound(to: UInt32.self)
        let gb = UnsafeRawPointer(g).assumingMemoryBound(to: UInt32.self)
        let o0 = UnsafeMutableRawPointer(d0).assumingMemoryBound(to: UInt32.self)
        let o1 = UnsafeMutableRawPointer(d1).assumingMemoryBound(to: UInt32.self)
        while j < width {
            let mj = mb[j]
            var rest = gb[j] & allOnes(Int32(bitPattern: mj) > 0)
            let ea = allOnes(xb0[2 * j] == mj)
            o0[2 * j] = rest & ea; rest &= ~ea
            let eb = allOnes(xb0[2 * j + 1] == mj)
            o0[2 * j + 1] = rest & eb; rest &= ~eb
            let ec = allOnes(xb1[2 * j] == mj)
            o1[2 * j] = rest & ec; rest &= ~ec
            o1[2 * j + 1] = rest
            j += 1
        }
    }
    while j < width {
        let mj = m[j]
        var gj = g[j]
        let a = x0[2 * j], b = x0[2 * j + 1], c = x1[2 * j]
        d0[2 * j] = a == mj ? gj : 0; gj = a == mj ? 0 : gj
        d0[2 * j + 1] = b == mj ? gj : 0; gj = b == mj ? 0 : gj
        d1[2 * j] = c == mj ? gj : 0; gj = c == mj ? 0 : gj
        d1[2 * j + 1] = gj
        j += 1
    }
}

/// 0xFFFF_FFFF if `b`, else 0 (no branch).
@inline(__always)
private func allOnes(_ b: Bool) -> UInt32 { 0 &- UInt32(b ? 1 : 0) }

/// (a0, b0, a1, b1, ..., a7, b7).
@inline(__always)
private func interleave(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD16<Float> {
    SIMD16(a[0], b[0], a[1], b[1], a[2], b[2], a[3], b[3], a[4], b[4], a[5], b[5], a[6], b[6], a[7], b[7])
}

/// Scalar reference for maxPool2Forward.
public func maxPool2ForwardReference(_ input: UnsafePointer<Float>, _ x: ImageLayout,
                                     output: UnsafeMutablePointer<Float>, _ y: ImageLayout) {
    for n in 0..<x.batch { for c in 0..<x.channels { for i in 0..<y.height { for j in 0..<y.width {
        var m = -Float.infinity
        for dy in 0..<2 { for dx in 0..<2 { m = max(m, input[x.offset(n, c, 2 * i + dy, 2 * j + dx)]) } }
        output[y.offset(n, c, i, j)] = m
    } } } }
}

/// Scalar reference for maxPool2Backward: argmax recomputed with PyTorch's loop (strictly
/// greater replaces, so the first maximum wins), then the optional ReLU mask.
public func maxPool2BackwardReference(_ input: UnsafePointer<Float>, _ x: ImageLayout, outGrad: UnsafePointer<Float>,
                                      _ y: ImageLayout, inputGrad: UnsafeMutablePointer<Float>, reluMasked: Bool) {
    for n in 0..<x.batch { for c in 0..<x.channels {
        for yy in 0..<x.height { for xx in 0..<x.width { inputGrad[x.offset(n, c, yy, xx)] = 0 } }
        for i in 0..<y.height { for j in 0..<y.width {
            var best = x.offset(n, c, 2 * i, 2 * j)
            for dy in 0..<2 { for dx in 0..<2 {
                let o = x.offset(n, c, 2 * i + dy, 2 * j + dx)
                if input[o] > input[best] { best = o }
            } }
            if reluMasked && !(input[best] > 0) { continue }
            inputGrad[best] += outGrad[y.offset(n, c, i, j)]
        } }
    } }
}
