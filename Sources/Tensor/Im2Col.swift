// im2col / col2im for stride-1 convolutions with zero padding (the lowering to GEMM).
//
// col is a [C*kh*kw, N*H*W] row-major matrix: row r = (c*kh + ky)*kw + kx, column q = (n*H + y)*W + x,
// col[r, q] = X(n, c, y + ky - pad, x + kx - pad), 0 outside the image. Output size equals input
// size (stride 1, pad = (k-1)/2 for the 3×3 convolutions of the CNN).

/// Fills `col` from `input` (any ImageLayout); rows are split across `threads`.
public func im2col(_ input: UnsafePointer<Float>, _ x: ImageLayout, kernel k: Int, pad: Int,
                   col: UnsafeMutablePointer<Float>, threads: Int) {
    let rows = x.channels * k * k
    let src = UnsafeTransfer(input), dst = UnsafeTransfer(col)
    Parallel.run(min(threads, rows)) { part in
        for r in Parallel.range(part, of: min(threads, rows), count: rows) {
            im2colRow(src.value, x, k, pad, r, dst.value)
        }
    }
}

@inline(__always)
private func im2colRow(_ input: UnsafePointer<Float>, _ x: ImageLayout, _ k: Int, _ pad: Int, _ r: Int,
                       _ col: UnsafeMutablePointer<Float>) {
    let c = r / (k * k), ky = (r / k) % k, kx = r % k
    let h = x.height, w = x.width, ncols = x.batch * h * w
    var d = col + r * ncols
    let dx = kx - pad
    let x0 = max(0, -dx), x1 = min(w, w - dx)       // valid x range: 0 <= x+dx < w
    for n in 0..<x.batch {
        let plane = input + n * x.batchStride + c * x.channelStride
        for y in 0..<h {
            let sy = y + ky - pad
            if sy < 0 || sy >= h || x1 <= x0 {
                d.initialize(repeating: 0, count: w)
            } else {
                let s = plane + sy * w + dx
                for xx in 0..<x0 { d[xx] = 0 }
                (d + x0).update(from: s + x0, count: x1 - x0)
                for xx in x1..<w { d[xx] = 0 }
            }
            d += w
        }
    }
}

/// Scatter-adds `col` back into `output` (CNHW or any layout with disjoint channels), which is
/// overwritten: output(n,c,y,x) = Σ_{ky,kx} col[(c,ky,kx), (n, y-ky+pad, x-kx+pad)].
/// Channels are split across `threads` (each writes only its own channels).
public func col2im(_ col: UnsafePointer<Float>, _ x: ImageLayout, kernel k: Int, pad: Int,
                   output: UnsafeMutablePointer<Float>, threads: Int) {
    let src = UnsafeTransfer(col), dst = UnsafeTransfer(output)
    let parts = min(threads, x.channels)
    Parallel.run(parts) { part in
        for c in Parallel.range(part, of: parts, count: x.channels) {
            col2imChannel(src.value, x, k, pad, c, dst.value)
        }
    }
}

@inline(__always)
private func col2imChannel(_ col: UnsafePointer<Float>, _ x: ImageLayout, _ k: Int, _ pad: Int, _ c: Int,
                           _ output: UnsafeMutablePointer<Float>) {
    let h = x.height, w = x.width, ncols = x.batch * h * w
    for n in 0..<x.batch {
        let plane = output + n * x.batchStride + c * x.channelStride
        for y in 0..<h { (plane + y * w).initialize(repeating: 0, count: w) }
    }
    for ky in 0..<k {
        for kx in 0..<k {
            let row = col + ((c * k + ky) * k + kx) * ncols
            let dx = kx - pad
            let x0 = max(0, -dx), x1 = min(w, w - dx)
            if x1 <= x0 { continue }
            for n in 0..<x.batch {
                let plane = output + n * x.batchStride + c * x.channelStride
                for y in 0..<h {
                    let sy = y + ky - pad
                    if sy < 0 || sy >= h { continue }
                    let s = row + (n * h + y) * w, d = plane + sy * w + dx
                    for xx in x0..<x1 { d[xx] += s[xx] }
                }
            }
        }
    }
}
