// conv2d with any kernel (1-7), stride (1-2) and padding: explicit im2col into a column buffer,
// then the packed GEMM. Used where the implicit-im2col path (Conv2d.swift: stride 1 and
// "same" padding) does not apply, e.g. LeNet-5's unpadded 5x5 and ResNet's stride-2 convolutions.
//
// Shapes:
//   input  X: N×Cin×H×W in any ImageLayout
//   weight W: [Cout, Cin, k, k] = the [Cout, K] matrix, K = Cin*k*k;  bias b: [Cout]
//   output Y: [Cout, N*Ho*Wo] (CNHW), Ho = (H + 2p − k)/s + 1, Wo likewise
//   col:      [K, N*Ho*Wo], col[(c,ky,kx), (n,oy,ox)] = X(n, c, oy*s + ky − p, ox*s + kx − p), 0 outside
// Forward:  Y = W·col + b (ReLU fused if asked)
// Backward: dB = Σ_q dY[:, q]; dW = dY·colᵀ; dX = col2im(Wᵀ·dY)   (all overwritten)

/// Geometry of a general convolution.
public struct ConvGeometry: Equatable, Sendable {
    /// Input channels, output channels, kernel size, stride and zero padding.
    public var inChannels: Int, outChannels: Int, kernel: Int, stride: Int, pad: Int
    /// A Cin→Cout convolution with a k×k kernel, stride s and padding p.
    public init(inChannels: Int, outChannels: Int, kernel: Int, stride: Int, pad: Int) {
        self.inChannels = inChannels; self.outChannels = outChannels; self.kernel = kernel; self.stride = stride; self.pad = pad
    }
    /// Output rows for `h` input rows.
    public func outSize(_ h: Int) -> Int { (h + 2 * pad - kernel) / stride + 1 }
    /// Rows of the column matrix: Cin*k*k.
    public var colRows: Int { inChannels * kernel * kernel }
    /// Floats of the column matrix for input layout `x`.
    public func colCount(_ x: ImageLayout) -> Int { colRows * x.batch * outSize(x.height) * outSize(x.width) }
    /// The output layout (CNHW) for input layout `x`.
    public func outLayout(_ x: ImageLayout) -> ImageLayout { .cnhw(x.batch, outChannels, outSize(x.height), outSize(x.width)) }
}

/// Fills `col` ([K, N*Ho*Wo]) from `input`; rows split over `threads`.
public func im2colStrided(_ input: UnsafePointer<Float>, _ x: ImageLayout, _ g: ConvGeometry,
                          col: UnsafeMutablePointer<Float>, threads: Int) {
    let ho = g.outSize(x.height), wo = g.outSize(x.width), q = x.batch * ho * wo, k = g.kernel, rows = g.colRows
    let src = UnsafeTransfer(input), dst = UnsafeTransfer(col)
    let parts = min(threads, rows)
    Parallel.run(parts) { part in
        for r in Parallel.range(part, of: parts, count: rows) {
            let c = r / (k * k), ky = (r / k) % k, kx = r % k
            var d = dst.value + r * q
            for n in 0..<x.batch {
                let plane = src.value + n * x.batchStride + c * x.channelStride
                for oy in 0..<ho {
                    let sy = oy * g.stride + ky - g.pad
                    if sy < 0 || sy >= x.height {
                        d.initialize(repeating: 0, count: wo)
                    } else {
                        let row = plane + sy * x.width
                        for ox in 0..<wo {
                            let sx = ox * g.stride + kx - g.pad
                            d[ox] = sx >= 0 && sx < x.width ? row[sx] : 0
                        }
                    }
                    d += wo
                }
            }
        }
    }
}

/// Overwrites `output` (layout x) with the scatter-add of `col`: the adjoint of im2colStrided.
/// Channels split over `threads` (each writes only its own channels).
public func col2imStrided(_ col: UnsafePointer<Float>, _ x: ImageLayout, _ g: ConvGeometry,
                          output: UnsafeMutablePointer<Float>, threads: Int) {
    let ho = g.outSize(x.height), wo = g.outSize(x.width), q = x.batch * ho * wo, k = g.kernel
    let src = UnsafeTransfer(col), dst = UnsafeTransfer(output)
    let parts = min(threads, x.channels)
    Parallel.run(parts) { part in
        for c in Parallel.range(part, of: parts, count: x.channels) {
            for n in 0..<x.batch {
                let plane = dst.value + n * x.batchStride + c * x.channelStride
                for y in 0..<x.height { (plane + y * x.width).initialize(repeating: 0, count: x.width) }
            }
            for ky in 0..<k { for kx in 0..<k {
                var s = src.value + ((c * k + ky) * k + kx) * q
                for n in 0..<x.batch {
                    let plane = dst.value + n * x.batchStride + c * x.channelStride
                    for oy in 0..<ho {
                        let sy = oy * g.stride + ky - g.pad
                        if sy >= 0 && sy < x.height {
                            let row = plane + sy * x.width
                            for ox in 0..<wo {
                                let sx = ox * g.stride + kx - g.pad
                                if sx >= 0 && sx < x.width { row[sx] += s[ox] }
                            }
                        }
                        s += wo
                    }
                }
            } }
        }
    }
}

/// Y = W·im2col(X) + b (ReLU if `relu`); `col` holds at least g.colCount(x) floats.
public func convStridedForward(_ input: UnsafePointer<Float>, _ x: ImageLayout, _ g: ConvGeometry,
                               weight: UnsafePointer<Float>, bias: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
                               relu: Bool, col: UnsafeMutablePointer<Float>, threads: Int, gemmWorkspace: GEMMWorkspace) {
    let q = g.outLayout(x).batch * g.outLayout(x).plane, kk = g.colRows
    im2colStrided(input, x, g, col: col, threads: threads)
    gemm(m: g.outChannels, n: q, k: kk, a: weight, aRS: kk, aCS: 1, b: col, bRS: q, bCS: 1, c: output, ldc: q,
         threads: threads, workspace: gemmWorkspace)
    addBiasRows(output, rows: g.outChannels, cols: q, bias: bias, relu: relu, threads: threads)
}

/// Gradients of convStridedForward (dY already ReLU-masked): dW, dB and, if `inputGrad` is
/// non-nil, dX in layout x; all overwritten. `col` is scratch (>= g.colCount(x) floats).
public func convStridedBackward(_ input: UnsafePointer<Float>, _ x: ImageLayout, _ g: ConvGeometry,
                                weight: UnsafePointer<Float>, outGrad: UnsafePointer<Float>,
                                weightGrad: UnsafeMutablePointer<Float>?, biasGrad: UnsafeMutablePointer<Float>?,
                                inputGrad: UnsafeMutablePointer<Float>?, col: UnsafeMutablePointer<Float>,
                                threads: Int, gemmWorkspace: GEMMWorkspace) {
    let y = g.outLayout(x), q = y.batch * y.plane, kk = g.colRows
    if let biasGrad { sumRows(outGrad, rows: g.outChannels, cols: q, into: biasGrad, threads: threads) }
    if let weightGrad {
        im2colStrided(input, x, g, col: col, threads: threads)
        gemm(m: g.outChannels, n: kk, k: q, a: outGrad, aRS: q, aCS: 1, b: col, bRS: 1, bCS: q, c: weightGrad, ldc: kk,
             threads: threads, workspace: gemmWorkspace)
    }
    guard let inputGrad else { return }
    gemm(m: kk, n: q, k: g.outChannels, a: weight, aRS: 1, aCS: kk, b: outGrad, bRS: q, bCS: 1, c: col, ldc: q,
         threads: threads, workspace: gemmWorkspace)
    col2imStrided(col, x, g, output: inputGrad, threads: threads)
}

/// Scalar reference for convStridedForward (direct loops in Double).
public func convStridedForwardReference(_ input: UnsafePointer<Float>, _ x: ImageLayout, _ g: ConvGeometry,
                                        weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                                        output: UnsafeMutablePointer<Float>, relu: Bool) {
    let y = g.outLayout(x), k = g.kernel
    for co in 0..<g.outChannels { for n in 0..<x.batch { for oy in 0..<y.height { for ox in 0..<y.width {
        var acc = Double(bias[co])
        for ci in 0..<g.inChannels { for ky in 0..<k { for kx in 0..<k {
            let sy = oy * g.stride + ky - g.pad, sx = ox * g.stride + kx - g.pad
            if sy < 0 || sy >= x.height || sx < 0 || sx >= x.width { continue }
            acc += Double(weight[((co * g.inChannels + ci) * k + ky) * k + kx]) * Double(input[x.offset(n, ci, sy, sx)])
        } } }
        output[y.offset(n, co, oy, ox)] = relu ? max(0, Float(acc)) : Float(acc)
    } } } }
}

/// Scalar reference for convStridedBackward (direct loops in Double).
public func convStridedBackwardReference(_ input: UnsafePointer<Float>, _ x: ImageLayout, _ g: ConvGeometry,
                                         weight: UnsafePointer<Float>, outGrad: UnsafePointer<Float>,
                                         weightGrad: UnsafeMutablePointer<Float>, biasGrad: UnsafeMutablePointer<Float>,
                                         inputGrad: UnsafeMutablePointer<Float>?) {
    let y = g.outLayout(x), k = g.kernel
    var dW = [Double](repeating: 0, count: g.outChannels * g.colRows), dB = [Double](repeating: 0, count: g.outChannels)
    var dX = [Double](repeating: 0, count: x.count)
    let xl = ImageLayout.nchw(x.batch, x.channels, x.height, x.width)
    for co in 0..<g.outChannels { for n in 0..<x.batch { for oy in 0..<y.height { for ox in 0..<y.width {
        let d = Double(outGrad[y.offset(n, co, oy, ox)])
        dB[co] += d
        for ci in 0..<g.inChannels { for ky in 0..<k { for kx in 0..<k {
            let sy = oy * g.stride + ky - g.pad, sx = ox * g.stride + kx - g.pad
            if sy < 0 || sy >= x.height || sx < 0 || sx >= x.width { continue }
            let wi = ((co * g.inChannels + ci) * k + ky) * k + kx
            dW[wi] += d * Double(input[x.offset(n, ci, sy, sx)])
            dX[xl.offset(n, ci, sy, sx)] += d * Double(weight[wi])
        } } }
    } } } }
    for i in dW.indices { weightGrad[i] = Float(dW[i]) }
    for i in dB.indices { biasGrad[i] = Float(dB[i]) }
    guard let inputGrad else { return }
    for n in 0..<x.batch { for c in 0..<x.channels { for yy in 0..<x.height { for xx in 0..<x.width {
        inputGrad[x.offset(n, c, yy, xx)] = Float(dX[xl.offset(n, c, yy, xx)])
    } } } }
}
