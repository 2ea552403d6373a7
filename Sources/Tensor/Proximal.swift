// FedProx's proximal term (Li et al., "Federated Optimization in Heterogeneous Networks", MLSys
// 2020): the client minimises f(w) + (μ/2)·‖w − w_global‖², whose gradient adds μ·(w − w_global)
// to f's gradient. Over the one flat parameter buffer, so it is the same for any model:
//   grad[i] += mu * (w[i] - anchor[i]),  i in 0..<count
// Called after backward and before the optimiser step.

/// Adds μ·(w − anchor) to `grads` over `count` values (SIMD8; `addProximalGradientReference` is the scalar reference).
public func addProximalGradient(_ grads: UnsafeMutablePointer<Float>, params: UnsafePointer<Float>,
                                anchor: UnsafePointer<Float>, count: Int, mu: Float) {
    typealias V = SIMD8<Float>
    let vmu = V(repeating: mu)
    var i = 0
    while i + 8 <= count {
        let w = UnsafeRawPointer(params + i).loadUnaligned(as: V.self)
        let a = UnsafeRawPointer(anchor + i).loadUnaligned(as: V.self)
        let g = UnsafeRawPointer(grads + i).loadUnaligned(as: V.self)
        UnsafeMutableRawPointer(grads + i).storeBytes(of: g + vmu * (w - a), as: V.self)
        i += 8
    }
    while i < count {
        grads[i] += mu * (params[i] - anchor[i])
        i += 1
    }
}

/// Scalar reference for `addProximalGradient`.
public func addProximalGradientReference(_ grads: UnsafeMutablePointer<Float>, params: UnsafePointer<Float>,
                                         anchor: UnsafePointer<Float>, count: Int, mu: Float) {
    for i in 0..<count { grads[i] += mu * (params[i] - anchor[i]) }
}
