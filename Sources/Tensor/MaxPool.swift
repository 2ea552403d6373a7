// 2×2 max-pool, stride 2, floor mode (odd sizes drop the last row/column: 7→3), like PyTorch's
// MaxPool2d(2). Forward records which of the 4 inputs won (0..3, first maximum wins on ties) so
// backward routes each gradient to exactly one input.
//   input  X: N×C×H×W in layout x;   output Y: N×C×(H/2)×(W/2) in layout y;   argmax: like Y
//   (index y.offset(n,c,i,j)).

/// Y = maxpool2(X); `argmax[off]` gets the winning position (dy*2+dx) of each window.
public func maxPool2Forward(_ input: UnsafePointer<Float>, _ x: ImageLayout, output: UnsafeMutablePointer<Float>,
                            _ y: ImageLayout, argmax: UnsafeMutablePointer<UInt8>, threads: Int) {
    let src = UnsafeTransfer(input), dst = UnsafeTransfer(output), idx = UnsafeTransfer(argmax)
    let parts = min(threads, x.channels)
    Parallel.run(parts) { part in
        for c in Parallel.range(part, of: parts, count: x.channels) {
            for n in 0..<x.batch {
                let ip = src.value + n * x.batchStride + c * x.channelStride
                let base = n * y.batchStride + c * y.channelStride
                let op = dst.value + base, ap = idx.value + base
                for i in 0..<y.height {
                    let r0 = ip + 2 * i * x.width, r1 = r0 + x.width
                    for j in 0..<y.width {
                        let a = r0[2 * j], b = r0[2 * j + 1], cc = r1[2 * j], d = r1[2 * j + 1]
                        var m = a, k: UInt8 = 0
                        if b > m { m = b; k = 1 }
                        if cc > m { m = cc; k = 2 }
                        if d > m { m = d; k = 3 }
                        op[i * y.width + j] = m
                        ap[i * y.width + j] = k
                    }
                }
            }
        }
    }
}

/// dX = route dY to the argmax of each window; every other element of dX (including the rows
/// and columns floor mode dropped) is 0. dX is overwritten in layout x.
public func maxPool2Backward(_ outGrad: UnsafePointer<Float>, _ y: ImageLayout, argmax: UnsafePointer<UInt8>,
                             inputGrad: UnsafeMutablePointer<Float>, _ x: ImageLayout, threads: Int) {
    let src = UnsafeTransfer(outGrad), dst = UnsafeTransfer(inputGrad), idx = UnsafeTransfer(argmax)
    let parts = min(threads, x.channels)
    Parallel.run(parts) { part in
        for c in Parallel.range(part, of: parts, count: x.channels) {
            for n in 0..<x.batch {
                let ip = dst.value + n * x.batchStride + c * x.channelStride
                ip.initialize(repeating: 0, count: x.plane)
                let base = n * y.batchStride + c * y.channelStride
                let gp = src.value + base, ap = idx.value + base
                for i in 0..<y.height {
                    for j in 0..<y.width {
                        let k = Int(ap[i * y.width + j])
                        ip[(2 * i + (k >> 1)) * x.width + 2 * j + (k & 1)] = gp[i * y.width + j]
                    }
                }
            }
        }
    }
}

/// Scalar reference for maxPool2Forward (values only).
public func maxPool2ForwardReference(_ input: UnsafePointer<Float>, _ x: ImageLayout,
                                     output: UnsafeMutablePointer<Float>, _ y: ImageLayout) {
    for n in 0..<x.batch { for c in 0..<x.channels { for i in 0..<y.height { for j in 0..<y.width {
        var m = -Float.infinity
        for dy in 0..<2 { for dx in 0..<2 { m = max(m, input[x.offset(n, c, 2 * i + dy, 2 * j + dx)]) } }
        output[y.offset(n, c, i, j)] = m
    } } } }
}

/// Scalar reference for maxPool2Backward, recomputing the argmax from the input (first max wins).
public func maxPool2BackwardReference(_ input: UnsafePointer<Float>, _ x: ImageLayout, outGrad: UnsafePointer<Float>,
                                      _ y: ImageLayout, inputGrad: UnsafeMutablePointer<Float>) {
    for n in 0..<x.batch { for c in 0..<x.channels {
        for yy in 0..<x.height { for xx in 0..<x.width { inputGrad[x.offset(n, c, yy, xx)] = 0 } }
        for i in 0..<y.height { for j in 0..<y.width {
            var best = x.offset(n, c, 2 * i, 2 * j)
            for dy in 0..<2 { for dx in 0..<2 {
                let o = x.offset(n, c, 2 * i + dy, 2 * j + dx)
                if input[o] > input[best] { best = o }
            } }
            inputGrad[best] += outGrad[y.offset(n, c, i, j)]
        } }
    } }
}
