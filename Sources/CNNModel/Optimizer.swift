// The optimiser, apart from the network: torch.optim.SGD(lr, momentum, weight_decay) (dampening 0,
// no Nesterov; the kernel is Tensor's SGD.swift) over one flat parameter buffer, with FedProx's
// proximal term μ·(w − w₀) (Tensor's Proximal.swift), w₀ the parameters a fit starts from.
// It is not part of the model: `train` makes a fresh one per call (like a fresh torch optimizer per
// fit); `trainDPSGD` takes one from its caller when the momentum must carry over between calls
// (centralised DP-SGD, one call per epoch). It reaches a model's buffers through `withBuffers`.
import Tensor

/// SGD with momentum and weight decay, plus FedProx's proximal term. Not thread-safe: it serves
/// one training run at a time.
public final class SGDOptimizer: @unchecked Sendable {
    /// Floats in the parameter buffer it updates.
    public let parameterCount: Int
    /// The momentum buffer (zeros after `reset`).
    let velocity: UnsafeMutablePointer<Float>
    /// w₀ of the proximal term, from `begin` when μ > 0.
    private var anchor: [Float]?

    /// An optimiser for `parameterCount` parameters, momentum zero.
    public init(parameterCount: Int) {
        self.parameterCount = parameterCount
        velocity = .allocate(capacity: max(1, parameterCount))
        velocity.initialize(repeating: 0, count: max(1, parameterCount))
    }

    deinit { velocity.deallocate() }

    /// Zeroes the momentum buffer (a fresh torch optimizer).
    public func reset() { velocity.update(repeating: 0, count: parameterCount) }

    /// Starts a fit from `params`: momentum zero, and with `config.proximalMu` > 0 the proximal
    /// term anchored at a copy of `params` (none otherwise).
    public func begin(_ config: SGDConfig, params: UnsafeBufferPointer<Float>) {
        reset()
        anchor = config.proximalMu > 0 ? Array(params) : nil
    }

    /// Adds μ·(w − w₀) to `grads` when `begin` anchored the term (nothing otherwise).
    public func addProximalTerm(_ config: SGDConfig, grads: UnsafeMutablePointer<Float>, params: UnsafePointer<Float>) {
        guard let anchor else { return }
        anchor.withUnsafeBufferPointer { a in
            if let base = a.baseAddress {
                addProximalGradient(grads, params: params, anchor: base, count: parameterCount, mu: config.proximalMu)
            }
        }
    }

    /// One update of `params` from `grads` (the momentum buffer carries over between steps).
    public func step(_ config: SGDConfig, params: UnsafeMutablePointer<Float>, grads: UnsafePointer<Float>) {
        sgdStep(params, grads: grads, velocity: velocity, count: parameterCount, learningRate: config.learningRate,
                momentum: config.momentum, weightDecay: config.weightDecay)
    }

    /// `begin` from `model`'s parameters.
    public func begin(_ config: SGDConfig, model: any Model) {
        model.withParameters { begin(config, params: $0) }
    }

    /// `addProximalTerm` to `model`'s gradients at its parameters.
    public func addProximalTerm(_ config: SGDConfig, model: any Model) {
        model.withBuffers { p, g in
            if let gp = g.baseAddress, let pp = p.baseAddress { addProximalTerm(config, grads: gp, params: pp) }
        }
    }

    /// One update of `model`'s parameters from its gradient buffer.
    public func step(_ config: SGDConfig, model: any Model) {
        model.withBuffers { p, g in
            if let pp = p.baseAddress, let gp = g.baseAddress { step(config, params: pp, grads: gp) }
        }
    }
}
