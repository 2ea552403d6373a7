// Per-example squared gradient norms of the parameterised layers, for DP-SGD's per-example
// clipping. Each adds, for every example i of the batch, ‖∂ℓ_i/∂W‖² + ‖∂ℓ_i/∂b‖² to norms[i],
// given the layer's input X and the gradient dY of the loss w.r.t. its output (dY row i is
// example i's own, so dW_i = dY_i·col(X_i)ᵀ). Nothing per example outlives the call: a
// convolution's dW_i (Cout×Cin·k·k floats) and col(X_i) live in per-thread scratch and are
// reduced to one number at once, so memory does not grow with the batch.
//
// Per convolution, the cheaper of two exact methods (Goodfellow 2015; Li et al. 2022): the
// per-example GEMM dW_i = dY_i·col_iᵀ costs T·K·Cout per example (T output positions, K = Cin·k²),
// the "ghost" norm ‖dW_i‖² = Σ_{t,t'} (dY_iᵀdY_i)_{tt'}·(col_iᵀcol_i)_{tt'} costs T²·(K + Cout);
// the Gram form wins when T·(K + Cout) < K·Cout (`convPerExampleUsesGram`). In the reference
// CNN on 28×28 inputs conv1 (T 784) and conv2 (T 196) take the GEMM, conv3 (T 49: 2.1× fewer
// flops) and conv4 (T 9, 295k weights: 23× fewer, and no 295k-float dW_i written per example)
// the Gram form. A linear layer has T = 1: ‖dW_i‖² = ‖x_i‖²·‖dY_i‖², O(in + out).
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

/// Σ x² in Double. Multiply-then-add, not `addProduct`: this module is built for baseline
/// x86-64, where SIMD `addProduct` becomes one `fmaf` call per lane (13% of a DP-SGD run's
/// samples under perf before this).
@inline(__always)
func squaredSum(_ p: UnsafePointer<Float>, _ count: Int) -> Double {
    var acc = SIMD8<Float>(), tail = 0.0, i = 0
    var total = 0.0
    while i + 8 <= count {
        let v = UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<Float>.self)
        acc += v * v
        i += 8
        if i & 1023 == 0 { total += Double(acc.sum()); acc = SIMD8() }
    }
    while i < count { tail += Double(p[i]) * Double(p[i]); i += 1 }
    return total + Double(acc.sum()) + tail
}

/// Σ a[j]·b[j] in Double (multiply-then-add, as `squaredSum`).
@inline(__always)
func dotSum(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ count: Int) -> Double {
    var acc = SIMD8<Float>(), tail = 0.0, i = 0
    var total = 0.0
    while i + 8 <= count {
        acc += UnsafeRawPointer(a + i).loadUnaligned(as: SIMD8<Float>.self)
            * UnsafeRawPointer(b + i).loadUnaligned(as: SIMD8<Float>.self)
        i += 8
        if i & 1023 == 0 { total += Double(acc.sum()); acc = SIMD8() }
    }
    while i < count { tail += Double(a[i]) * Double(b[i]); i += 1 }
    return total + Double(acc.sum()) + tail
}

/// Whether `convPerExampleSquaredNorms` takes the Gram ("ghost") form for a convolution with
/// `positions` output positions: T²·(K + Cout) flops against the per-example GEMM's T·K·Cout.
public func convPerExampleUsesGram(_ g: ConvGeometry, positions t: Int) -> Bool {
    t * (g.colRows + g.outChannels) < g.colRows * g.outChannels
}

/// Adds each example's ‖dW_i‖² + ‖db_i‖² of a convolution (any stride/padding) to `norms`
/// (N Doubles). `scratch` must hold g.colRows·Ho·Wo col floats and Cout·colRows weight floats
/// (the Gram form needs 2·(Ho·Wo)² ≤ Cout·colRows, which its choice implies).
public func convPerExampleSquaredNorms(_ input: UnsafePointer<Float>, _ x: ImageLayout, _ g: ConvGeometry,
                                       outGrad: UnsafePointer<Float>, norms: UnsafeMutablePointer<Double>,
                                       scratch: PerExampleScratch, threads: Int) {
    let t = g.outSize(x.height) * g.outSize(x.width), k = g.colRows, cout = g.outChannels, n = x.batch
    precondition(k * t <= scratch.colStride && cout * k <= scratch.weightStride, "per-example scratch too small")
    let gram = convPerExampleUsesGram(g, positions: t)
    precondition(!gram || 2 * t * t <= scratch.weightStride, "per-example scratch too small for the Gram form")
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
            var total: Double
            if gram {
                // col_iᵀcol_i and dY_iᵀdY_i, both [T, T]; col_i is [K, T] row-major, dY_i row c
                // starts at c·N·T + i·T.
                let gx = dw, gy = dw + t * t, dy = dys.value + i * t
                gemm(m: t, n: t, k: k, a: col, aRS: 1, aCS: t, b: col, bRS: t, bCS: 1, c: gx, ldc: t,
                     threads: 1, workspace: ws)
                gemm(m: t, n: t, k: cout, a: dy, aRS: 1, aCS: n * t, b: dy, bRS: n * t, bCS: 1, c: gy, ldc: t,
                     threads: 1, workspace: ws)
                total = dotSum(gx, gy, t * t)
            } else {
                // dW_i[Cout, K] = dY_i[Cout, T] · col_iᵀ.
                gemm(m: cout, n: k, k: t, a: dys.value + i * t, aRS: n * t, aCS: 1, b: col, bRS: 1, bCS: t,
                     c: dw, ldc: k, threads: 1, workspace: ws)
                total = squaredSum(dw, cout * k)
            }
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

/// Multiplies every value of example i in `values` (layout `l`, any batch and channel strides) by
/// `scales[i]` (DP-SGD's clipping factors on a kept output gradient); scales of 1 are skipped.
public func scaleExamples(_ values: UnsafeMutablePointer<Float>, _ l: ImageLayout, scales: UnsafePointer<Float>,
                          threads: Int) {
    let v = UnsafeTransfer(values), sc = UnsafeTransfer(scales), plane = l.plane
    let contiguous = l.channelStride == plane && l.batchStride == l.channels * plane
    let parts = l.count >= 1 << 15 ? min(threads, l.batch) : 1
    Parallel.run(parts) { part in
        for i in Parallel.range(part, of: parts, count: l.batch) {
            let s = sc.value[i]
            guard s != 1 else { continue }
            if contiguous {
                let p = v.value + i * l.batchStride
                for j in 0..<l.batchStride { p[j] *= s }
            } else {
                for c in 0..<l.channels {
                    let p = v.value + l.offset(i, c, 0, 0)
                    for j in 0..<plane { p[j] *= s }
                }
            }
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
