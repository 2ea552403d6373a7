// General max/average pooling (any window, stride, padding; floor mode) and global average
// pooling, forward and backward, on any ImageLayout. The 2x2/stride-2 max pool of the reference
// CNN keeps its SIMD kernel (MaxPool.swift); these serve every other shape.
//   input X: N×C×H×W (layout x)   output Y: N×C×Ho×Wo (layout y), Ho = (H + 2p − k)/s + 1
//   max: Y = max over the window (padding never wins); dX gets dY at the window's first maximum
//   avg: Y = Σ window / k² (padding counts as zeros in the divisor, PyTorch's default)
// Backward overwrites dX. Planes (n, c) are split over `threads`.

/// Window geometry of a pooling layer.
public struct PoolGeometry: Equatable, Sendable {
    /// Window size, stride and padding.
    public var kernel: Int, stride: Int, pad: Int
    /// A k×k window moving by s, with p padding.
    public init(kernel: Int, stride: Int, pad: Int) { self.kernel = kernel; self.stride = stride; self.pad = pad }
    /// Output size for an input of `h`.
    public func outSize(_ h: Int) -> Int { (h + 2 * pad - kernel) / stride + 1 }
}

/// Max pooling forward.
public func maxPoolForward(_ input: UnsafePointer<Float>, _ x: ImageLayout, _ g: PoolGeometry,
                           output: UnsafeMutablePointer<Float>, _ y: ImageLayout, threads: Int) {
    let inputT = UnsafeTransfer(input)
    let outputT = UnsafeTransfer(output)
    forEachPlane(x, threads: threads) { n, c in
        let input = inputT.value
        let output = outputT.value
        for oy in 0..<y.height { for ox in 0..<y.width {
            var m = -Float.infinity
            for ky in 0..<g.kernel { for kx in 0..<g.kernel {
                let sy = oy * g.stride + ky - g.pad, sx = ox * g.stride + kx - g.pad
                if sy < 0 || sy >= x.height || sx < 0 || sx >= x.width { continue }
                let v = input[x.offset(n, c, sy, sx)]
                if v > m || v.isNaN { m = v }
            } }
            output[y.offset(n, c, oy, ox)] = m
        } }
    }
}

/// Max pooling backward: dX (overwritten) gets each dY at the first maximum of its window.
public func maxPoolBackward(_ input: UnsafePointer<Float>, _ x: ImageLayout, _ g: PoolGeometry,
                            outGrad: UnsafePointer<Float>, _ y: ImageLayout, inputGrad: UnsafeMutablePointer<Float>,
                            threads: Int) {
    let inputT = UnsafeTransfer(input)
    let outGradT = UnsafeTransfer(outGrad)
    let inputGradT = UnsafeTransfer(inputGrad)
    forEachPlane(x, threads: threads) { n, c in
        let input = inputT.value
        let outGrad = outGradT.value
        let inputGrad = inputGradT.value
        for yy in 0..<x.height { (inputGrad + x.offset(n, c, yy, 0)).initialize(repeating: 0, count: x.width) }
        for oy in 0..<y.height { for ox in 0..<y.width {
            var best = -1, m = -Float.infinity
            for ky in 0..<g.kernel { for kx in 0..<g.kernel {
                let sy = oy * g.stride + ky - g.pad, sx = ox * g.stride + kx - g.pad
                if sy < 0 || sy >= x.height || sx < 0 || sx >= x.width { continue }
                let o = x.offset(n, c, sy, sx)
                if best < 0 || input[o] > m { best = o; m = input[o] }
            } }
            if best >= 0 { inputGrad[best] += outGrad[y.offset(n, c, oy, ox)] }
        } }
    }
}

/// Average pooling forward (divisor k², padding included).
public func avgPoolForward(_ input: UnsafePointer<Float>, _ x: ImageLayout, _ g: PoolGeometry,
                           output: UnsafeMutablePointer<Float>, _ y: ImageLayout, threads: Int) {
    let inv = 1 / Float(g.kernel * g.kernel)
    let inputT = UnsafeTransfer(input)
    let outputT = UnsafeTransfer(output)
    forEachPlane(x, threads: threads) { n, c in
        let input = inputT.value
        let output = outputT.value
        for oy in 0..<y.height { for ox in 0..<y.width {
            var s: Float = 0
            for ky in 0..<g.kernel { for kx in 0..<g.kernel {
                let sy = oy * g.stride + ky - g.pad, sx = ox * g.stride + kx - g.pad
                if sy < 0 || sy >= x.height || sx < 0 || sx >= x.width { continue }
                s += input[x.offset(n, c, sy, sx)]
            } }
            output[y.offset(n, c, oy, ox)] = s * inv
        } }
    }
}

/// Average pooling backward: dX (overwritten) gets dY/k² at every position of each window.
public func avgPoolBackward(_ x: ImageLayout, _ g: PoolGeometry, outGrad: UnsafePointer<Float>, _ y: ImageLayout,
                            inputGrad: UnsafeMutablePointer<Float>, threads: Int) {
    let inv = 1 / Float(g.kernel * g.kernel)
    let outGradT = UnsafeTransfer(outGrad)
    let inputGradT = UnsafeTransfer(inputGrad)
    forEachPlane(x, threads: threads) { n, c in
        let outGrad = outGradT.value
        let inputGrad = inputGradT.value
        for yy in 0..<x.height { (inputGrad + x.offset(n, c, yy, 0)).initialize(repeating: 0, count: x.width) }
        for oy in 0..<y.height { for ox in 0..<y.width {
            let d = outGrad[y.offset(n, c, oy, ox)] * inv
            for ky in 0..<g.kernel { for kx in 0..<g.kernel {
                let sy = oy * g.stride + ky - g.pad, sx = ox * g.stride + kx - g.pad
                if sy < 0 || sy >= x.height || sx < 0 || sx >= x.width { continue }
                inputGrad[x.offset(n, c, sy, sx)] += d
            } }
        } }
    }
}

/// Global average pooling: Y(n, c, 0, 0) = mean of plane (n, c); y is N×C×1×1.
public func globalAvgPoolForward(_ input: UnsafePointer<Float>, _ x: ImageLayout, output: UnsafeMutablePointer<Float>,
                                 _ y: ImageLayout, threads: Int) {
    let inv = 1 / Float(x.plane)
    let inputT = UnsafeTransfer(input)
    let outputT = UnsafeTransfer(output)
    forEachPlane(x, threads: threads) { n, c in
        let input = inputT.value
        let output = outputT.value
        let p = input + x.offset(n, c, 0, 0)
        var s: Float = 0
        for i in 0..<x.plane { s += p[i] }
        output[y.offset(n, c, 0, 0)] = s * inv
    }
}

/// Global average pooling backward: every element of plane (n, c) gets dY(n, c)/(H*W).
public func globalAvgPoolBackward(_ x: ImageLayout, outGrad: UnsafePointer<Float>, _ y: ImageLayout,
                                  inputGrad: UnsafeMutablePointer<Float>, threads: Int) {
    let inv = 1 / Float(x.plane)
    let outGradT = UnsafeTransfer(outGrad)
    let inputGradT = UnsafeTransfer(inputGrad)
    forEachPlane(x, threads: threads) { n, c in
        let outGrad = outGradT.value
        let inputGrad = inputGradT.value
        (inputGrad + x.offset(n, c, 0, 0)).initialize(repeating: outGrad[y.offset(n, c, 0, 0)] * inv, count: x.plane)
    }
}

/// Runs `body(n, c)` for every plane of `x`, planes split over `threads` (disjoint writes).
@inline(__always)
func forEachPlane(_ x: ImageLayout, threads: Int, _ body: @escaping @Sendable (Int, Int) -> Void) {
    let planes = x.batch * x.channels
    let parts = planes * x.plane >= 1 << 14 ? min(threads, planes) : 1
    Parallel.run(parts) { part in
        for p in Parallel.range(part, of: parts, count: planes) { body(p % x.batch, p / x.batch) }
    }
}

/// Scalar reference for the pooling kernels (Double sums): `average` false = max, true = average.
public func poolForwardReference(_ input: UnsafePointer<Float>, _ x: ImageLayout, _ g: PoolGeometry, average: Bool,
                                 output: UnsafeMutablePointer<Float>, _ y: ImageLayout) {
    for n in 0..<x.batch { for c in 0..<x.channels { for oy in 0..<y.height { for ox in 0..<y.width {
        var m = -Double.infinity, s = 0.0
        for ky in 0..<g.kernel { for kx in 0..<g.kernel {
            let sy = oy * g.stride + ky - g.pad, sx = ox * g.stride + kx - g.pad
            guard sy >= 0, sy < x.height, sx >= 0, sx < x.width else { continue }
            let v = Double(input[x.offset(n, c, sy, sx)])
            m = max(m, v); s += v
        } }
        output[y.offset(n, c, oy, ox)] = Float(average ? s / Double(g.kernel * g.kernel) : m)
    } } } }
}
