// GroupNorm (Wu & He, 2018), PyTorch's nn.GroupNorm(G, C, eps) with affine weight γ and bias β.
// Preferred in federated learning over BatchNorm: no running statistics that non-IID clients
// would average badly (Hsieh et al., 2020).
//   X: N×C×H×W (any ImageLayout)   γ, β: [C]   Y: same layout as X
//   per image n and group g (C/G channels × H×W = M values): μ, σ² (biased), r = 1/√(σ² + eps)
//   x̂ = (x − μ)·r;   Y = γ_c·x̂ + β_c
// Backward (per n, g): dx̂ = dY·γ;  dX = r·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂));
//   dγ_c = Σ_{n,pixels} dY·x̂;  dβ_c = Σ dY   (all overwritten)

/// Forward pass; writes Y and the per-(n, g) mean and 1/σ (`stats`, 2·N·G floats) for backward.
public func groupNormForward(_ input: UnsafePointer<Float>, _ x: ImageLayout, groups: Int, eps: Float,
                             gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>,
                             output: UnsafeMutablePointer<Float>, stats: UnsafeMutablePointer<Float>, threads: Int) {
    let cpg = x.channels / groups, hw = x.plane
    let xs = UnsafeTransfer(input), ys = UnsafeTransfer(output), st = UnsafeTransfer(stats)
    let gs = UnsafeTransfer(gamma), bs = UnsafeTransfer(beta)
    let jobs = x.batch * groups, parts = x.count >= 1 << 14 ? min(threads, jobs) : 1
    Parallel.run(parts) { part in
        for j in Parallel.range(part, of: parts, count: jobs) {
            let n = j / groups, g = j % groups
            var s = 0.0, s2 = 0.0
            for c in g * cpg..<(g + 1) * cpg {
                let p = xs.value + x.offset(n, c, 0, 0)
                for i in 0..<hw { let v = Double(p[i]); s += v; s2 += v * v }
            }
            let m = Double(cpg * hw), mean = s / m, variance = max(0, s2 / m - mean * mean)
            let r = Float(1 / (variance + Double(eps)).squareRoot()), mu = Float(mean)
            st.value[2 * j] = mu; st.value[2 * j + 1] = r
            for c in g * cpg..<(g + 1) * cpg {
                let p = xs.value + x.offset(n, c, 0, 0), q = ys.value + x.offset(n, c, 0, 0)
                let a = gs.value[c] * r, b = bs.value[c] - mu * a
                for i in 0..<hw { q[i] = p[i] * a + b }
            }
        }
    }
}

/// Backward pass after groupNormForward with the same `stats`: dγ, dβ (overwritten) and, if
/// `inputGrad` is non-nil, dX (overwritten; may not alias outGrad).
public func groupNormBackward(_ input: UnsafePointer<Float>, _ x: ImageLayout, groups: Int,
                              gamma: UnsafePointer<Float>, stats: UnsafePointer<Float>, outGrad: UnsafePointer<Float>,
                              gammaGrad: UnsafeMutablePointer<Float>?, betaGrad: UnsafeMutablePointer<Float>?,
                              inputGrad: UnsafeMutablePointer<Float>?, threads: Int) {
    let cpg = x.channels / groups, hw = x.plane
    // dγ, dβ: per channel, over images and pixels (channels split over threads); skipped without
    // both buffers (DP-SGD's norm pass).
    let xs = UnsafeTransfer(input), dys = UnsafeTransfer(outGrad), st = UnsafeTransfer(stats), gs = UnsafeTransfer(gamma)
    if let gammaGrad, let betaGrad {
        let dg = UnsafeTransfer(gammaGrad), db = UnsafeTransfer(betaGrad)
        let cparts = x.count >= 1 << 14 ? min(threads, x.channels) : 1
        Parallel.run(cparts) { part in
            for c in Parallel.range(part, of: cparts, count: x.channels) {
                var sg: Float = 0, sb: Float = 0
                let g = c / cpg
                for n in 0..<x.batch {
                    let mu = st.value[2 * (n * groups + g)], r = st.value[2 * (n * groups + g) + 1]
                    let p = xs.value + x.offset(n, c, 0, 0), d = dys.value + x.offset(n, c, 0, 0)
                    for i in 0..<hw { sg += d[i] * (p[i] - mu) * r; sb += d[i] }
                }
                dg.value[c] = sg; db.value[c] = sb
            }
        }
    }
    guard let inputGrad else { return }
    let dx = UnsafeTransfer(inputGrad)
    let jobs = x.batch * groups, parts = x.count >= 1 << 14 ? min(threads, jobs) : 1
    Parallel.run(parts) { part in
        for j in Parallel.range(part, of: parts, count: jobs) {
            let n = j / groups, g = j % groups
            let mu = st.value[2 * j], r = st.value[2 * j + 1]
            var sd: Float = 0, sdx: Float = 0
            for c in g * cpg..<(g + 1) * cpg {
                let p = xs.value + x.offset(n, c, 0, 0), d = dys.value + x.offset(n, c, 0, 0), gm = gs.value[c]
                for i in 0..<hw { let dh = d[i] * gm; sd += dh; sdx += dh * (p[i] - mu) * r }
            }
            let m = Float(cpg * hw), md = sd / m, mdx = sdx / m
            for c in g * cpg..<(g + 1) * cpg {
                let p = xs.value + x.offset(n, c, 0, 0), d = dys.value + x.offset(n, c, 0, 0)
                let q = dx.value + x.offset(n, c, 0, 0), gm = gs.value[c]
                for i in 0..<hw { q[i] = r * (d[i] * gm - md - (p[i] - mu) * r * mdx) }
            }
        }
    }
}

/// Scalar reference for groupNormForward (two-pass statistics in Double).
public func groupNormForwardReference(_ input: UnsafePointer<Float>, _ x: ImageLayout, groups: Int, eps: Float,
                                      gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>,
                                      output: UnsafeMutablePointer<Float>) {
    let cpg = x.channels / groups
    for n in 0..<x.batch { for g in 0..<groups {
        var vals: [Double] = []
        for c in g * cpg..<(g + 1) * cpg { for yy in 0..<x.height { for xx in 0..<x.width {
            vals.append(Double(input[x.offset(n, c, yy, xx)]))
        } } }
        let mean = vals.reduce(0, +) / Double(vals.count)
        let variance = vals.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(vals.count)
        let r = 1 / (variance + Double(eps)).squareRoot()
        for c in g * cpg..<(g + 1) * cpg { for yy in 0..<x.height { for xx in 0..<x.width {
            let o = x.offset(n, c, yy, xx)
            output[o] = Float((Double(input[o]) - mean) * r * Double(gamma[c]) + Double(beta[c]))
        } } }
    } }
}
