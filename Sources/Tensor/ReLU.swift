// ReLU forward/backward on flat float32 buffers (any layout: elementwise).
//   forward:  y = max(0, x)           backward: dx = dy where y > 0, else 0 (PyTorch's rule)

/// y = max(0, x), elementwise over `count` floats (in place allowed: y == x).
public func reluForward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
    var i = 0
    let zero = SIMD8<Float>()
    while i + 8 <= count {
        let v = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self)
        UnsafeMutableRawPointer(y + i).storeBytes(of: v.replacing(with: zero, where: v .< zero), as: SIMD8<Float>.self)
        i += 8
    }
    while i < count { y[i] = x[i] > 0 ? x[i] : 0; i += 1 }
}

/// grad[i] = 0 where output[i] <= 0 (in place), for `count` floats; `output` is the ReLU's output.
public func reluBackward(_ grad: UnsafeMutablePointer<Float>, output: UnsafePointer<Float>, count: Int,
                         threads: Int = 1) {
    let g = UnsafeTransfer(grad), o = UnsafeTransfer(output)
    let parts = count >= 1 << 16 ? threads : 1
    Parallel.run(parts) { part in
        let r = Parallel.range(part, of: parts, count: count, align: 8)
        var i = r.lowerBound
        let zero = SIMD8<Float>()
        while i + 8 <= r.upperBound {
            let v = UnsafeRawPointer(o.value + i).loadUnaligned(as: SIMD8<Float>.self)
            let d = UnsafeRawPointer(g.value + i).loadUnaligned(as: SIMD8<Float>.self)
            UnsafeMutableRawPointer(g.value + i).storeBytes(of: d.replacing(with: zero, where: v .<= zero),
                                                            as: SIMD8<Float>.self)
            i += 8
        }
        while i < r.upperBound { if o.value[i] <= 0 { g.value[i] = 0 }; i += 1 }
    }
}

/// Scalar reference for reluForward.
public func reluForwardReference(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
    for i in 0..<count { y[i] = x[i] > 0 ? x[i] : 0 }
}

/// Scalar reference for reluBackward.
public func reluBackwardReference(_ grad: UnsafeMutablePointer<Float>, output: UnsafePointer<Float>, count: Int) {
    for i in 0..<count where !(output[i] > 0) { grad[i] = 0 }
}
