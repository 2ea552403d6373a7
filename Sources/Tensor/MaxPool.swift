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
            // Every element of dX is written once: the 4 positions of each window (branch-free
            // selects; the winner is random, so branches would mispredict), then the row and
            // column floor mode dropped.
            for i in 0..<y.height {
                let r0 = 2 * i * x.width, r1 = r0 + x.width
                for j in 0..<y.width {
                    let m = op[i * y.width + j]
                    let g: Float = reluMasked && !(m > 0) ? 0 : gp[i * y.width + j]
                    let c0 = r0 + 2 * j, c1 = r1 + 2 * j
                    let e0 = ip[c0] == m, e1 = !e0 && ip[c0 + 1] == m
                    let e2 = !e0 && !e1 && ip[c1] == m, e3 = !e0 && !e1 && !e2
                    dp[c0] = e0 ? g : 0; dp[c0 + 1] = e1 ? g : 0
                    dp[c1] = e2 ? g : 0; dp[c1 + 1] = e3 ? g : 0
                }
                if x.width & 1 == 1 { dp[r0 + x.width - 1] = 0; dp[r1 + x.width - 1] = 0 }
            }
            if x.height & 1 == 1 { (dp + (x.height - 1) * x.width).initialize(repeating: 0, count: x.width) }
        }
    }
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
