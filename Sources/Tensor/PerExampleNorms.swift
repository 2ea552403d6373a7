// Per-example squared gradient norms of the parameterised layers, for DP-SGD's per-example
// clipping. Each adds, for every example i of the batch, ‖∂ℓ_i/∂W‖² + ‖∂ℓ_i/∂b‖² to norms[i],
// given the layer's input X and the gradient dY of the loss w.r.t. its output (dY row i is
// example i's own, so dW_i = dY_i·col(X_i)ᵀ). Nothing per example outlives the call: a
// convolution's dW_i (Cout×Cin·k·k floats) and col(X_i) live in per-thread scratch and are
// reduced to one number at once, so memory does not grow with the batch.
//
// Why per-example GEMMs for convolutions and "ghost" norms for linear layers (Goodfellow 2015;
// Li et al. 2022): the ghost norm of a layer with T output positions costs O(T²·(K + Cout)) per
// example against O(T·K·Cout) for the GEMM; with T = 784 or 196 pixels (the zoo's convolutions)
// the GEMM is 4–50× cheaper. A linear layer has T = 1: ‖dW_i‖² = ‖x_i‖²·‖dY_i‖², O(in + out).
//
// Layouts as everywhere in Tensor: X any ImageLayout (NCHW for the network input, CNHW inside);
// a convolution's dY is CNHW [Cout, N·Ho·Wo]; a linear layer's X is [N, in] and dY [N, out].

/// Per-thread buffers of the per-example norm kernels, sized for the largest convolution.
public final class PerExampleScratch: @unchecked Sendable {
    /// Threads it has buffers for.
    public let threads: Int
    let colStride: Int, weightStride: Int
    let col: UnsafeMutablePointer<Float>, weight: UnsafeMutablePointer<Float>
    let gemm: [GEMMWorkspace]

    /// Buffers for `threads` workers, each holding one example's im2col matrix of up to
    /// `colFloats` floats and one weight gradient of up to `weightFloats` floats.
    public init(threads: Int, colFloats: Int, weightFloats: Int) throws {
        self.threads = max(1, threads)
        colStride = max(1, colFloats); weightStride = max(1, weightFloats)
        col = .allocate(capacity: colStride * self.threads)
        weight = .allocate(capacity: weightStride * self.threads)
        gemm = try (0..<self.threads).map { _ in try GEMMWorkspace(threads: 1) }
    }
    deinit { col.deallocate(); weight.deallocate() }

    /// Bytes held (buffers and the GEMM packing workspaces).
    public var bytes: Int { (colStride + weightStride) * threads * 4 + gemm.reduce(0) { $0 + $1.bytes } }
}

/// Σ x² in Double.
@inline(__always)
func squaredSum(_ p: UnsafePointer<Float>, _ count: Int) -> Double {
    var acc = SIMD8<Float>(), tail = 0.0, i = 0
    var total = 0.0
    while i + 8 <= count {
        let v = UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<Float>.self)
        acc.addProduct(v, v)
        i += 8
        if i & 1023 == 0 { total += Double(acc.sum()); acc = SIMD8() }
    }
    while i < count { tail += Double(p[i]) * Double(p[i]); i += 1 }
    return total + Double(acc.sum()) + tail
}

/// Adds each example's ‖dW_i‖² + ‖db_i‖² of a convolution (any stride/padding) to `norms`
/// (N Doubles). `scratch` must hold g.colRows·Ho·Wo col floats and Cout·colRows weight floats.
public func convPerExampleSquaredNorms(_ input: UnsafePointer<Float>, _ x: ImageLayout, _ g: ConvGeometry,
                                       outGrad: UnsafePointer<Float>, norms: UnsafeMutablePointer<Double>,
                                       scratch: PerExampleScratch, threads: Int) {
    let t = g.outSize(x.height) * g.outSize(x.width), k = g.colRows, cout = g.outChannels, n = x.batch
    precondition(k * t <= scratch.colStride && cout * k <= scratch.weightStride, "per-example scratch too small")
    var single = ImageLayout.nchw(1, x.channels, x.height, x.width)
    single.channelStride = x.channelStride
    let one = single
    let xs = UnsafeTransfer(input), dys = UnsafeTransfer(outGrad), out = UnsafeTransfer(norms), s = UnsafeTransfer(scratch)
    let parts = min(threads, scratch.threads, n)
    Parallel.run(parts) { part in
        let col = s.value.col + part * s.value.colStride, dw = s.value.weight + part * s.value.weightStride
        let ws = s.value.gemm[part]
        for i in Parallel.range(part, of: parts, count: n) {
            im2colStrided(xs.value + i * x.batchStride, one, g, col: col, threads: 1)
            // dW_i[Cout, K] = dY_i[Cout, T] · col_iᵀ; dY_i row c starts at c·N·T + i·T.
            gemm(m: cout, n: k, k: t, a: dys.value + i * t, aRS: n * t, aCS: 1, b: col, bRS: 1, bCS: t,
                 c: dw, ldc: k, threads: 1, workspace: ws)
            var total = squaredSum(dw, cout * k)
            for c in 0..<cout {
                let row = dys.value + c * n * t + i * t
                var b = 0.0
                for j in 0..<t { b += Double(row[j]) }
                total += b * b
            }
            out.value[i] += total
        }
    }
}

/// Adds each example's ‖dW_i‖² + ‖db_i‖² = ‖x_i‖²·‖dY_i‖² + ‖dY_i‖² of a linear layer to `norms`.
public func linearPerExampleSquaredNorms(_ input: UnsafePointer<Float>, batch: Int, inFeatures: Int, outFeatures: Int,
                                         outGrad: UnsafePointer<Float>, norms: UnsafeMutablePointer<Double>) {
    for i in 0..<batch {
        let g2 = squaredSum(outGrad + i * outFeatures, outFeatures)
        norms[i] += squaredSum(input + i * inFeatures, inFeatures) * g2 + g2
    }
}

/// Adds each example's ‖dγ_i‖² + ‖dβ_i‖² of a GroupNorm to `norms`, from the per-(n, g) mean and
/// 1/σ `stats` its forward wrote: dγ_{c,i} = Σ_pixels dY·x̂, dβ_{c,i} = Σ_pixels dY.
public func groupNormPerExampleSquaredNorms(_ input: UnsafePointer<Float>, _ x: ImageLayout, groups: Int,
                                            stats: UnsafePointer<Float>, outGrad: UnsafePointer<Float>,
                                            norms: UnsafeMutablePointer<Double>) {
    let cpg = x.channels / groups, hw = x.plane
    for n in 0..<x.batch {
        var total = 0.0
        for c in 0..<x.channels {
            let j = n * groups + c / cpg, mu = stats[2 * j], r = stats[2 * j + 1]
            let xp = input + x.offset(n, c, 0, 0), dp = outGrad + x.offset(n, c, 0, 0)
            var dg = 0.0, db = 0.0
            for k in 0..<hw {
                let d = Double(dp[k])
                dg += d * Double((xp[k] - mu) * r); db += d
            }
            total += dg * dg + db * db
        }
        norms[n] += total
    }
}

/// Scalar reference for `convPerExampleSquaredNorms`: every dW_i entry as a direct sum in Double.
public func convPerExampleSquaredNormsReference(_ input: UnsafePointer<Float>, _ x: ImageLayout, _ g: ConvGeometry,
                                                outGrad: UnsafePointer<Float>) -> [Double] {
    let ho = g.outSize(x.height), wo = g.outSize(x.width), t = ho * wo, n = x.batch
    var out = [Double](repeating: 0, count: n)
    for i in 0..<n {
        for co in 0..<g.outChannels {
            let row = outGrad + co * n * t + i * t
            var b = 0.0
            for j in 0..<t { b += Double(row[j]) }
            out[i] += b * b
            for ci in 0..<g.inChannels { for ky in 0..<g.kernel { for kx in 0..<g.kernel {
                var w = 0.0
                for oy in 0..<ho { for ox in 0..<wo {
                    let sy = oy * g.stride + ky - g.pad, sx = ox * g.stride + kx - g.pad
                    guard sy >= 0, sy < x.height, sx >= 0, sx < x.width else { continue }
                    w += Double(row[oy * wo + ox]) * Double(input[x.offset(i, ci, sy, sx)])
                } }
                out[i] += w * w
            } } }
        }
    }
    return out
}
