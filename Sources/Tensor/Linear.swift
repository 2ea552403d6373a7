// Linear (fully connected) forward/backward, PyTorch's nn.Linear convention.
//   x: [B, in] row-major   W: [out, in]   b: [out]   y: [B, out]
//   forward:  y = x·Wᵀ + b
//   backward: dW = dyᵀ·x   db = Σ_batch dy   dx = dy·W       (dW, db, dx overwritten)

/// y = x·Wᵀ + b.
public func linearForward(_ x: UnsafePointer<Float>, batch: Int, inFeatures: Int, outFeatures: Int,
                          weight: UnsafePointer<Float>, bias: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
                          threads: Int, gemmWorkspace: GEMMWorkspace) {
    gemm(m: batch, n: outFeatures, k: inFeatures, a: x, aRS: inFeatures, aCS: 1, b: weight, bRS: 1, bCS: inFeatures,
         c: output, ldc: outFeatures, threads: threads, workspace: gemmWorkspace)
    for i in 0..<batch { for j in 0..<outFeatures { output[i * outFeatures + j] += bias[j] } }
}

/// Gradients of linearForward; `inputGrad` may be nil when dx is not needed.
public func linearBackward(_ x: UnsafePointer<Float>, batch: Int, inFeatures: Int, outFeatures: Int,
                           weight: UnsafePointer<Float>, outGrad: UnsafePointer<Float>,
                           weightGrad: UnsafeMutablePointer<Float>?, biasGrad: UnsafeMutablePointer<Float>?,
                           inputGrad: UnsafeMutablePointer<Float>?, threads: Int, gemmWorkspace: GEMMWorkspace) {
    if let weightGrad {
        gemm(m: outFeatures, n: inFeatures, k: batch, a: outGrad, aRS: 1, aCS: outFeatures, b: x, bRS: inFeatures,
             bCS: 1, c: weightGrad, ldc: inFeatures, threads: threads, workspace: gemmWorkspace)
    }
    if let biasGrad {
        for j in 0..<outFeatures { biasGrad[j] = 0 }
        for i in 0..<batch { for j in 0..<outFeatures { biasGrad[j] += outGrad[i * outFeatures + j] } }
    }
    guard let inputGrad else { return }
    gemm(m: batch, n: inFeatures, k: outFeatures, a: outGrad, aRS: outFeatures, aCS: 1, b: weight, bRS: inFeatures,
         bCS: 1, c: inputGrad, ldc: inFeatures, threads: threads, workspace: gemmWorkspace)
}

/// Scalar reference for linearForward (Double accumulation).
public func linearForwardReference(_ x: UnsafePointer<Float>, batch: Int, inFeatures: Int, outFeatures: Int,
                                   weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                                   output: UnsafeMutablePointer<Float>) {
    for i in 0..<batch { for j in 0..<outFeatures {
        var s = Double(bias[j])
        for p in 0..<inFeatures { s += Double(x[i * inFeatures + p]) * Double(weight[j * inFeatures + p]) }
        output[i * outFeatures + j] = Float(s)
    } }
}

/// Scalar reference for linearBackward (Double accumulation).
public func linearBackwardReference(_ x: UnsafePointer<Float>, batch: Int, inFeatures: Int, outFeatures: Int,
                                    weight: UnsafePointer<Float>, outGrad: UnsafePointer<Float>,
                                    weightGrad: UnsafeMutablePointer<Float>, biasGrad: UnsafeMutablePointer<Float>,
                                    inputGrad: UnsafeMutablePointer<Float>?) {
    for j in 0..<outFeatures {
        var sb = 0.0
        for i in 0..<batch { sb += Double(outGrad[i * outFeatures + j]) }
        biasGrad[j] = Float(sb)
        for p in 0..<inFeatures {
            var s = 0.0
            for i in 0..<batch { s += Double(outGrad[i * outFeatures + j]) * Double(x[i * inFeatures + p]) }
            weightGrad[j * inFeatures + p] = Float(s)
        }
    }
    guard let inputGrad else { return }
    for i in 0..<batch { for p in 0..<inFeatures {
        var s = 0.0
        for j in 0..<outFeatures { s += Double(outGrad[i * outFeatures + j]) * Double(weight[j * inFeatures + p]) }
        inputGrad[i * inFeatures + p] = Float(s)
    } }
}
