// SGD with momentum and weight decay, PyTorch's torch.optim.SGD (dampening 0, no Nesterov):
//   g = grad + weightDecay * w;   v = momentum * v + g;   w -= lr * v
// With a fresh velocity of zeros the first step is v = g, as PyTorch's first step (buf = g).

/// One SGD step over `count` parameters; `velocity` is the momentum buffer (unused if momentum 0).
public func sgdStep(_ params: UnsafeMutablePointer<Float>, grads: UnsafePointer<Float>,
                    velocity: UnsafeMutablePointer<Float>, count: Int,
                    learningRate lr: Float, momentum: Float, weightDecay: Float) {
    var i = 0
    let vlr = SIMD8<Float>(repeating: lr), vm = SIMD8<Float>(repeating: momentum)
    let vwd = SIMD8<Float>(repeating: weightDecay)
    typealias V = SIMD8<Float>
    while i + 8 <= count {
        let w = UnsafeRawPointer(params + i).loadUnaligned(as: V.self)
        let g = UnsafeRawPointer(grads + i).loadUnaligned(as: V.self) + vwd * w
        if momentum != 0 {
            let v = vm * UnsafeRawPointer(velocity + i).loadUnaligned(as: V.self) + g
            UnsafeMutableRawPointer(velocity + i).storeBytes(of: v, as: V.self)
            UnsafeMutableRawPointer(params + i).storeBytes(of: w - vlr * v, as: V.self)
        } else {
            UnsafeMutableRawPointer(params + i).storeBytes(of: w - vlr * g, as: V.self)
        }
        i += 8
    }
    while i < count {
        let g = grads[i] + weightDecay * params[i]
        if momentum != 0 {
            velocity[i] = momentum * velocity[i] + g
            params[i] -= lr * velocity[i]
        } else {
            params[i] -= lr * g
        }
        i += 1
    }
}

/// Scalar reference for sgdStep.
public func sgdStepReference(_ params: UnsafeMutablePointer<Float>, grads: UnsafePointer<Float>,
                             velocity: UnsafeMutablePointer<Float>, count: Int,
                             learningRate lr: Float, momentum: Float, weightDecay: Float) {
    for i in 0..<count {
        let g = grads[i] + weightDecay * params[i]
        if momentum != 0 {
            velocity[i] = momentum * velocity[i] + g
            params[i] -= lr * velocity[i]
        } else {
            params[i] -= lr * g
        }
    }
}
