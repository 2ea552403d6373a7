// Pooling layers: nn.MaxPool2d (the 2x2/stride-2 case on MaxPool.swift's SIMD kernel, with the
// preceding ReLU's mask fused into its backward as in the reference CNN), nn.AvgPool2d, and
// nn.AdaptiveAvgPool2d(1) (global average). No parameters.
import Tensor

final class MaxPoolOp: Op {
    let g: PoolGeometry
    /// The input is a fused conv+ReLU output consumed only here: drop dY where the max is <= 0.
    var reluMasked = false
    var fast: Bool { g.kernel == 2 && g.stride == 2 && g.pad == 0 }

    init(name: String, input: Int, output: Int, inShape: TensorShape, outShape: TensorShape, g: PoolGeometry) {
        self.g = g
        super.init(name: name, inputs: [input], output: output, inShape: inShape, outShape: outShape)
    }
    override func forward(_ p: Pass) {
        let l = layout(inputs[0], inShape, p.n), y = layout(output, outShape, p.n)
        if fast {
            maxPool2Forward(p.act[inputs[0]], l, output: p.act[output], y, threads: p.threads)
        } else {
            maxPoolForward(p.act[inputs[0]], l, g, output: p.act[output], y, threads: p.threads)
        }
    }
    override func backward(_ p: Pass, _ d0: UnsafeMutablePointer<Float>?, _ d1: UnsafeMutablePointer<Float>?) {
        guard let d0 else { return }
        let l = layout(inputs[0], inShape, p.n), y = layout(output, outShape, p.n)
        if fast {
            maxPool2Backward(input: p.act[inputs[0]], l, output: p.act[output], outGrad: p.grad[output], y,
                             inputGrad: d0, reluMasked: reluMasked, threads: p.threads)
        } else {
            maxPoolBackward(p.act[inputs[0]], l, g, outGrad: p.grad[output], y, inputGrad: d0, threads: p.threads)
        }
    }
}

final class AvgPoolOp: Op {
    let g: PoolGeometry
    init(name: String, input: Int, output: Int, inShape: TensorShape, outShape: TensorShape, g: PoolGeometry) {
        self.g = g
        super.init(name: name, inputs: [input], output: output, inShape: inShape, outShape: outShape)
    }
    override func forward(_ p: Pass) {
        avgPoolForward(p.act[inputs[0]], layout(inputs[0], inShape, p.n), g, output: p.act[output],
                       layout(output, outShape, p.n), threads: p.threads)
    }
    override func backward(_ p: Pass, _ d0: UnsafeMutablePointer<Float>?, _ d1: UnsafeMutablePointer<Float>?) {
        guard let d0 else { return }
        avgPoolBackward(layout(inputs[0], inShape, p.n), g, outGrad: p.grad[output], layout(output, outShape, p.n),
                        inputGrad: d0, threads: p.threads)
    }
}

final class GlobalAvgPoolOp: Op {
    override func forward(_ p: Pass) {
        globalAvgPoolForward(p.act[inputs[0]], layout(inputs[0], inShape, p.n), output: p.act[output],
                             layout(output, outShape, p.n), threads: p.threads)
    }
    override func backward(_ p: Pass, _ d0: UnsafeMutablePointer<Float>?, _ d1: UnsafeMutablePointer<Float>?) {
        guard let d0 else { return }
        globalAvgPoolBackward(layout(inputs[0], inShape, p.n), outGrad: p.grad[output], layout(output, outShape, p.n),
                              inputGrad: d0, threads: p.threads)
    }
}
