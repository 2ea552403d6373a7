// Convolution layer (nn.Conv2d): the reference CNN's 3x3/pad-1/stride-1 convolutions take the
// implicit-im2col kernels (Conv2d.swift, ReLU fused in forward); every other kernel/stride/padding
// the explicit-im2col path (ConvStrided.swift). Weight [Cout, Cin, k, k], bias [Cout], both
// initialised U(±1/√(Cin·k·k)) as PyTorch does.
import Tensor

final class ConvOp: Op {
    let g: ConvGeometry
    let weight: Int, bias: Int
    /// ReLU fused into the output (a following ReLU layer was folded in).
    var relu = false
    /// The ReLU mask is applied by the consumer (a fused 2x2 max pool), not here.
    var maskApplied = false
    var fast: Bool { g.kernel == 3 && g.pad == 1 && g.stride == 1 }

    init(name: String, input: Int, output: Int, inShape: TensorShape, outShape: TensorShape, g: ConvGeometry,
         weight: Int, bias: Int) {
        self.g = g; self.weight = weight; self.bias = bias
        super.init(name: name, inputs: [input], output: output, inShape: inShape, outShape: outShape)
    }
    override func colFloats(_ n: Int) -> Int { fast ? 0 : g.colCount(layout(inputs[0], inShape, n)) }

    override func forward(_ p: Pass) {
        let x = UnsafePointer(p.act[inputs[0]]), l = layout(inputs[0], inShape, p.n)
        if fast {
            conv2dForward(x, l, Conv2dShape(inChannels: g.inChannels, outChannels: g.outChannels, kernel: 3, pad: 1),
                          weight: p.params + weight, bias: p.params + bias, output: p.act[output], relu: relu,
                          threads: p.threads, gemmWorkspace: p.gemm)
        } else {
            convStridedForward(x, l, g, weight: p.params + weight, bias: p.params + bias, output: p.act[output],
                               relu: relu, col: p.col, threads: p.threads, gemmWorkspace: p.gemm)
        }
    }

    override func backward(_ p: Pass, _ d0: UnsafeMutablePointer<Float>?, _ d1: UnsafeMutablePointer<Float>?) {
        let dy = p.grad[output]
        if relu && !maskApplied {
            reluBackward(dy, output: p.act[output], count: p.n * outShape.count, threads: p.threads)
        }
        gradients(p, outGrad: dy, weightGrad: p.parameterGradients ? p.grads + weight : nil,
                  biasGrad: p.parameterGradients ? p.grads + bias : nil, inputGrad: d0)
    }

    private func gradients(_ p: Pass, outGrad dy: UnsafeMutablePointer<Float>, weightGrad: UnsafeMutablePointer<Float>?,
                           biasGrad: UnsafeMutablePointer<Float>?, inputGrad d0: UnsafeMutablePointer<Float>?) {
        let x = UnsafePointer(p.act[inputs[0]]), l = layout(inputs[0], inShape, p.n)
        if fast {
            conv2dBackward(x, l, Conv2dShape(inChannels: g.inChannels, outChannels: g.outChannels, kernel: 3, pad: 1),
                           weight: p.params + weight, outGrad: dy, weightGrad: weightGrad,
                           biasGrad: biasGrad, inputGrad: d0, threads: p.threads, gemmWorkspace: p.gemm)
        } else {
            convStridedBackward(x, l, g, weight: p.params + weight, outGrad: dy, weightGrad: weightGrad,
                                biasGrad: biasGrad, inputGrad: d0, col: p.col, threads: p.threads, gemmWorkspace: p.gemm)
        }
    }

    override var hasParameters: Bool { true }
    override func parameterGradients(_ p: Pass, outGrad: UnsafeMutablePointer<Float>) {
        // The kept gradient is the one `backward` saw after the ReLU mask: no mask again.
        gradients(p, outGrad: outGrad, weightGrad: p.grads + weight, biasGrad: p.grads + bias, inputGrad: nil)
    }

    override func addExampleNorms(_ p: Pass) {
        guard let norms = p.norms, let scratch = p.perExample else { return }
        convPerExampleSquaredNorms(p.act[inputs[0]], layout(inputs[0], inShape, p.n), g, outGrad: p.grad[output],
                                   norms: norms, scratch: scratch, threads: p.threads)
    }
    override var perExampleScratchFloats: (col: Int, weight: Int) {
        guard case let .image(_, h, w) = inShape else { return (0, 0) }
        return (g.colRows * g.outSize(h) * g.outSize(w), g.outChannels * g.colRows)
    }
}
