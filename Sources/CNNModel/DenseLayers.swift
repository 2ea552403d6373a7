// nn.Flatten (C×H×W → C·H·W in PyTorch's order) and nn.Linear (weight [out, in], bias [out],
// both U(±1/√in)).
import Tensor

final class FlattenOp: Op {
    override func forward(_ p: Pass) {
        let l = layout(inputs[0], inShape, p.n), f = inShape.count, s = l.plane
        let x = p.act[inputs[0]], y = p.act[output]
        for img in 0..<p.n { for c in 0..<l.channels {
            (y + img * f + c * s).update(from: x + l.offset(img, c, 0, 0), count: s)
        } }
    }
    override func backward(_ p: Pass, _ d0: UnsafeMutablePointer<Float>?, _ d1: UnsafeMutablePointer<Float>?) {
        guard let d0 else { return }
        let l = layout(inputs[0], inShape, p.n), f = inShape.count, s = l.plane, dy = p.grad[output]
        for img in 0..<p.n { for c in 0..<l.channels {
            (d0 + l.offset(img, c, 0, 0)).update(from: dy + img * f + c * s, count: s)
        } }
    }
}

final class LinearOp: Op {
    let weight: Int, bias: Int
    init(name: String, input: Int, output: Int, inShape: TensorShape, outShape: TensorShape, weight: Int, bias: Int) {
        self.weight = weight; self.bias = bias
        super.init(name: name, inputs: [input], output: output, inShape: inShape, outShape: outShape)
    }
    override func forward(_ p: Pass) {
        linearForward(p.act[inputs[0]], batch: p.n, inFeatures: inShape.count, outFeatures: outShape.count,
                      weight: p.params + weight, bias: p.params + bias, output: p.act[output],
                      threads: p.threads, gemmWorkspace: p.gemm)
    }
    override func backward(_ p: Pass, _ d0: UnsafeMutablePointer<Float>?, _ d1: UnsafeMutablePointer<Float>?) {
        linearBackward(p.act[inputs[0]], batch: p.n, inFeatures: inShape.count, outFeatures: outShape.count,
                       weight: p.params + weight, outGrad: p.grad[output],
                       weightGrad: p.parameterGradients ? p.grads + weight : nil,
                       biasGrad: p.parameterGradients ? p.grads + bias : nil, inputGrad: d0, threads: p.threads,
                       gemmWorkspace: p.gemm)
    }
    override var hasParameters: Bool { true }
    override func parameterGradients(_ p: Pass, outGrad: UnsafeMutablePointer<Float>) {
        linearBackward(p.act[inputs[0]], batch: p.n, inFeatures: inShape.count, outFeatures: outShape.count,
                       weight: p.params + weight, outGrad: outGrad, weightGrad: p.grads + weight,
                       biasGrad: p.grads + bias, inputGrad: nil, threads: p.threads, gemmWorkspace: p.gemm)
    }
    override func addExampleNorms(_ p: Pass) {
        guard let norms = p.norms else { return }
        linearPerExampleSquaredNorms(p.act[inputs[0]], batch: p.n, inFeatures: inShape.count, outFeatures: outShape.count,
                                     outGrad: p.grad[output], norms: norms)
    }
}
