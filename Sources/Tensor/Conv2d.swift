// conv2d forward and backward: stride 1, zero padding, square kernel, lowered to GEMM over the
// im2col matrix, which is never stored (implicit im2col: ConvGEMM.swift packs GEMM panels
// straight from the image and adds the input gradient's tiles straight into dX).
//
// Shapes (PyTorch's conventions for the parameters):
//   input  X: N×Cin×H×W in any ImageLayout (NCHW for the model input, CNHW inside the CNN)
//   weight W: [Cout, Cin, k, k] row-major = the [Cout, Cin*k*k] matrix of the GEMM
//   bias   b: [Cout]
//   output Y: [Cout, N*H*W] row-major, i.e. CNHW (ImageLayout.cnhw(N, Cout, H, W))
// Forward:  col = im2col(X); Y = W·col + b (optionally ReLU fused: Y = max(0, ·)).
// Backward: dB = Σ_q dY[:, q]; dW = dY·colᵀ; dX = col2im(Wᵀ·dY).
// Before implicit im2col, im2col/col2im and their memcpy/memset took ~20% of a training step
// and the col buffer was the largest allocation (BENCHMARKS.md "Training engine").

/// Geometry of one stride-1 convolution with padding `pad` on each side.
public struct Conv2dShape: Equatable, Sendable {
    /// Input channels.
    public var inChannels: Int
    /// Output channels (filters).
    public var outChannels: Int
    /// Kernel height and width.
    public var kernel: Int
    /// Zero padding on every side.
    public var pad: Int
    /// A convolution Cin→Cout with a k×k kernel (pad (k-1)/2 keeps the size).
    public init(inChannels: Int, outChannels: Int, kernel: Int = 3, pad: Int = 1) {
        self.inChannels = inChannels; self.outChannels = outChannels; self.kernel = kernel; self.pad = pad
    }
    /// Rows of the im2col matrix (the GEMM reduction): Cin*k*k.
    public var colRows: Int { inChannels * kernel * kernel }
    /// Weight elements: Cout*Cin*k*k.
    public var weightCount: Int { outChannels * colRows }
}

/// Y = W·im2col(X) + b, ReLU applied when `relu`; Y is [Cout, N*H*W] (CNHW).
public func conv2dForward(_ input: UnsafePointer<Float>, _ x: ImageLayout, _ s: Conv2dShape,
                          weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                          output: UnsafeMutablePointer<Float>, relu: Bool,
                          threads: Int, gemmWorkspace: GEMMWorkspace) {
    let q = x.batch * x.plane, kk = s.colRows
    gemmIm2col(m: s.outChannels, a: weight, aRS: kk, aCS: 1, image: input, x, kernel: s.kernel, pad: s.pad,
               c: output, ldc: q, threads: threads, workspace: gemmWorkspace)
    addBiasRows(output, rows: s.outChannels, cols: q, bias: bias, relu: relu, threads: threads)
}

/// Gradients of conv2dForward (before any ReLU: pass dY already masked by reluBackward).
/// Writes dW and dB (overwritten, not accumulated) and, if `inputGrad` is non-nil, dX in the
/// layout `x` (overwritten). `outGrad` is [Cout, N*H*W]. Without `inputGrad` (the first layer)
/// the dX GEMM is skipped; without `weightGrad`/`biasGrad` (DP-SGD's norm pass, which needs only
/// dX) that gradient is not computed.
public func conv2dBackward(_ input: UnsafePointer<Float>, _ x: ImageLayout, _ s: Conv2dShape,
                           weight: UnsafePointer<Float>, outGrad: UnsafePointer<Float>,
                           weightGrad: UnsafeMutablePointer<Float>?, biasGrad: UnsafeMutablePointer<Float>?,
                           inputGrad: UnsafeMutablePointer<Float>?,
                           threads: Int, gemmWorkspace: GEMMWorkspace) {
    let q = x.batch * x.plane, kk = s.colRows
    if let biasGrad { sumRows(outGrad, rows: s.outChannels, cols: q, into: biasGrad, threads: threads) }
    // dW[Cout, kk] = dY[Cout, q] · colᵀ (first layer: dot products along the pixels instead)
    if let weightGrad,
       !convWeightGradDirect(cout: s.outChannels, outGrad: outGrad, image: input, x, kernel: s.kernel, pad: s.pad,
                             weightGrad: weightGrad, threads: threads, level: gemmWorkspace.level) {
        gemmIm2colT(m: s.outChannels, a: outGrad, aRS: q, aCS: 1, image: input, x, kernel: s.kernel, pad: s.pad,
                    c: weightGrad, ldc: kk, threads: threads, workspace: gemmWorkspace)
    }
    guard let inputGrad else { return }
    // dX = col2im(Wᵀ · dY)  (Wᵀ element (i, p) = W[p*kk + i])
    gemmCol2im(kd: s.outChannels, a: weight, aRS: 1, aCS: kk, b: outGrad, bRS: q, bCS: 1,
               output: inputGrad, x, kernel: s.kernel, pad: s.pad, threads: threads, workspace: gemmWorkspace)
}

/// y[r, :] += bias[r] for each of `rows` rows of length `cols`, then max(0, ·) if `relu`.
public func addBiasRows(_ y: UnsafeMutablePointer<Float>, rows: Int, cols: Int, bias: UnsafePointer<Float>,
                        relu: Bool, threads: Int) {
    let p = UnsafeTransfer(y), bp = UnsafeTransfer(bias)
    let parts = min(threads, rows)
    Parallel.run(parts) { part in
        for r in Parallel.range(part, of: parts, count: rows) {
            let row = p.value + r * cols, b = bp.value[r]
            if relu {
                for j in 0..<cols { row[j] = max(0, row[j] + b) }
            } else {
                for j in 0..<cols { row[j] += b }
            }
        }
    }
}

/// out[r] = Σ_j m[r, j] for a row-major rows×cols matrix (8-lane SIMD partial sums).
public func sumRows(_ m: UnsafePointer<Float>, rows: Int, cols: Int, into out: UnsafeMutablePointer<Float>,
                    threads: Int) {
    let src = UnsafeTransfer(m), dst = UnsafeTransfer(out)
    let parts = min(threads, rows)
    Parallel.run(parts) { part in
        for r in Parallel.range(part, of: parts, count: rows) {
            let row = src.value + r * cols
            var acc = SIMD8<Float>()
            var j = 0
            while j + 8 <= cols {
                acc += UnsafeRawPointer(row + j).loadUnaligned(as: SIMD8<Float>.self); j += 8
            }
            var s = acc.sum()
            while j < cols { s += row[j]; j += 1 }
            dst.value[r] = s
        }
    }
}

/// Scalar reference for conv2dForward: direct 7-loop convolution in Double.
public func conv2dForwardReference(_ input: UnsafePointer<Float>, _ x: ImageLayout, _ s: Conv2dShape,
                                   weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                                   output: UnsafeMutablePointer<Float>, relu: Bool) {
    let h = x.height, w = x.width, q = x.batch * h * w, k = s.kernel
    for co in 0..<s.outChannels {
        for n in 0..<x.batch { for y in 0..<h { for xx in 0..<w {
            var acc = Double(bias[co])
            for ci in 0..<s.inChannels { for ky in 0..<k { for kx in 0..<k {
                let sy = y + ky - s.pad, sx = xx + kx - s.pad
                if sy < 0 || sy >= h || sx < 0 || sx >= w { continue }
                acc += Double(weight[((co * s.inChannels + ci) * k + ky) * k + kx]) * Double(input[x.offset(n, ci, sy, sx)])
            } } }
            let v = Float(acc)
            output[co * q + (n * h + y) * w + xx] = relu ? max(0, v) : v
        } } }
    }
}

/// Scalar reference for conv2dBackward: direct loops in Double; dX (if given) in layout `x`.
public func conv2dBackwardReference(_ input: UnsafePointer<Float>, _ x: ImageLayout, _ s: Conv2dShape,
                                    weight: UnsafePointer<Float>, outGrad: UnsafePointer<Float>,
                                    weightGrad: UnsafeMutablePointer<Float>, biasGrad: UnsafeMutablePointer<Float>,
                                    inputGrad: UnsafeMutablePointer<Float>?) {
    let h = x.height, w = x.width, q = x.batch * h * w, k = s.kernel
    var dW = [Double](repeating: 0, count: s.weightCount), dB = [Double](repeating: 0, count: s.outChannels)
    var dX = [Double](repeating: 0, count: x.batch * s.inChannels * h * w)
    for co in 0..<s.outChannels {
        for n in 0..<x.batch { for y in 0..<h { for xx in 0..<w {
            let g = Double(outGrad[co * q + (n * h + y) * w + xx])
            dB[co] += g
            for ci in 0..<s.inChannels { for ky in 0..<k { for kx in 0..<k {
                let sy = y + ky - s.pad, sx = xx + kx - s.pad
                if sy < 0 || sy >= h || sx < 0 || sx >= w { continue }
                let wi = ((co * s.inChannels + ci) * k + ky) * k + kx
                dW[wi] += g * Double(input[x.offset(n, ci, sy, sx)])
                dX[((n * s.inChannels + ci) * h + sy) * w + sx] += g * Double(weight[wi])
            } } }
        } } }
    }
    for i in 0..<dW.count { weightGrad[i] = Float(dW[i]) }
    for i in 0..<dB.count { biasGrad[i] = Float(dB[i]) }
    guard let inputGrad else { return }
    for n in 0..<x.batch { for ci in 0..<s.inChannels { for y in 0..<h { for xx in 0..<w {
        inputGrad[x.offset(n, ci, y, xx)] = Float(dX[((n * s.inChannels + ci) * h + y) * w + xx])
    } } } }
}
