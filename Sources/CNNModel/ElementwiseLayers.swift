// Elementwise layers: nn.ReLU (when not folded into a convolution), nn.Dropout (seeded mask,
// identity in evaluation), the residual Add (body(x) + shortcut(x)), and the NCHW → CNHW copy of
// the network input that elementwise layers and Add need when they read it directly.
import Tensor

final class ReLUOp: Op {
    override func forward(_ p: Pass) { reluForward(p.act[inputs[0]], p.act[output], count: p.n * inShape.count) }
    override func backward(_ p: Pass, _ d0: UnsafeMutablePointer<Float>?, _ d1: UnsafeMutablePointer<Float>?) {
        guard let d0 else { return }
        let count = p.n * inShape.count
        d0.update(from: p.grad[output], count: count)
        reluBackward(d0, output: p.act[output], count: count, threads: p.threads)
    }
}

final class DropoutOp: Op {
    let probability: Float
    /// Mask generator, reseeded by every `train` call.
    var rng = SplitMix64(seed: 0)
    var masked = false
    init(name: String, input: Int, output: Int, shape: TensorShape, p: Double) {
        probability = Float(p)
        super.init(name: name, inputs: [input], output: output, inShape: shape, outShape: shape)
    }
    override func extraFloats(_ n: Int) -> Int { n * inShape.count }
    override func forward(_ p: Pass) {
        let count = p.n * inShape.count
        masked = p.training && probability > 0
        if masked {
            dropoutMask(p.extra[index], count: count, p: probability, rng: &rng)
            multiply(p.act[inputs[0]], p.extra[index], p.act[output], count: count)
        } else {
            p.act[output].update(from: p.act[inputs[0]], count: count)
        }
    }
    override func backward(_ p: Pass, _ d0: UnsafeMutablePointer<Float>?, _ d1: UnsafeMutablePointer<Float>?) {
        guard let d0 else { return }
        let count = p.n * inShape.count
        if masked { multiply(p.grad[output], p.extra[index], d0, count: count) } else { d0.update(from: p.grad[output], count: count) }
    }
}

final class AddOp: Op {
    override func forward(_ p: Pass) { addForward(p.act[inputs[0]], p.act[inputs[1]], p.act[output], count: p.n * outShape.count) }
    override func backward(_ p: Pass, _ d0: UnsafeMutablePointer<Float>?, _ d1: UnsafeMutablePointer<Float>?) {
        let count = p.n * outShape.count
        d0?.update(from: p.grad[output], count: count)
        d1?.update(from: p.grad[output], count: count)
    }
}

final class ToCNHWOp: Op {
    override func forward(_ p: Pass) {
        let x = layout(0, inShape, p.n), y = layout(output, outShape, p.n)
        for n in 0..<p.n { for c in 0..<x.channels {
            (p.act[output] + y.offset(n, c, 0, 0)).update(from: p.act[inputs[0]] + x.offset(n, c, 0, 0), count: x.plane)
        } }
    }
}

/// nn.GroupNorm(G, C, eps): weight (γ, ones) and bias (β, zeros) per channel.
final class GroupNormOp: Op {
    let groups: Int, eps: Float, weight: Int, bias: Int
    init(name: String, input: Int, output: Int, shape: TensorShape, groups: Int, eps: Double, weight: Int, bias: Int) {
        self.groups = groups; self.eps = Float(eps); self.weight = weight; self.bias = bias
        super.init(name: name, inputs: [input], output: output, inShape: shape, outShape: shape)
    }
    override func extraFloats(_ n: Int) -> Int { 2 * n * groups }
    override func forward(_ p: Pass) {
        groupNormForward(p.act[inputs[0]], layout(inputs[0], inShape, p.n), groups: groups, eps: eps,
                         gamma: p.params + weight, beta: p.params + bias, output: p.act[output], stats: p.extra[index],
                         threads: p.threads)
    }
    override func backward(_ p: Pass, _ d0: UnsafeMutablePointer<Float>?, _ d1: UnsafeMutablePointer<Float>?) {
        groupNormBackward(p.act[inputs[0]], layout(inputs[0], inShape, p.n), groups: groups, gamma: p.params + weight,
                          stats: p.extra[index], outGrad: p.grad[output],
                          gammaGrad: p.parameterGradients ? p.grads + weight : nil,
                          betaGrad: p.parameterGradients ? p.grads + bias : nil, inputGrad: d0, threads: p.threads)
    }
    override var hasParameters: Bool { true }
    override func parameterGradients(_ p: Pass, outGrad: UnsafeMutablePointer<Float>) {
        groupNormBackward(p.act[inputs[0]], layout(inputs[0], inShape, p.n), groups: groups, gamma: p.params + weight,
                          stats: p.extra[index], outGrad: outGrad, gammaGrad: p.grads + weight,
                          betaGrad: p.grads + bias, inputGrad: nil, threads: p.threads)
    }
    override func addExampleNorms(_ p: Pass) {
        guard let norms = p.norms else { return }
        groupNormPerExampleSquaredNorms(p.act[inputs[0]], layout(inputs[0], inShape, p.n), groups: groups,
                                        stats: p.extra[index], outGrad: p.grad[output], norms: norms)
    }
}
