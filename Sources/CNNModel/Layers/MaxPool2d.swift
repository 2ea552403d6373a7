// maxpool2d: nn.MaxPool2d(kernel, stride, padding), floor mode, no parameters. JSON: "kernel_size",
// "stride" (kernel_size), "padding" (0, at most kernel_size/2). ONNX: MaxPool. The 2x2/stride-2
// case runs on MaxPool.swift's SIMD kernel, with the preceding ReLU's mask fused into its
// backward as in the reference CNN.
import Tensor

/// nn.MaxPool2d (floor mode).
struct MaxPool2dLayer: Pool2dLayer {
    var kernel: Int, stride: Int, padding: Int

    static let typeName = "maxpool2d"

    init(kernel: Int, stride: Int, padding: Int) { self.kernel = kernel; self.stride = stride; self.padding = padding }

    func compile(_ layer: ResolvedLayer, input: Int, into e: inout OpEmitter) -> Int {
        single(layer, into: &e) { name, out in
            MaxPoolOp(name: name, input: input, output: out, inShape: layer.input, outShape: layer.output, g: geometry)
        }
    }

    func onnx(_ layer: ResolvedLayer, input x: String, into g: inout ONNXNodeBuilder) -> String {
        g.node("MaxPool", [x], path: layer.path, onnxPoolAttributes)
    }
}

extension LayerSpec {
    /// nn.MaxPool2d(kernel, stride, padding) (floor mode).
    public static func maxPool2d(kernel: Int, stride: Int, padding: Int) -> LayerSpec {
        LayerSpec(MaxPool2dLayer(kernel: kernel, stride: stride, padding: padding))
    }
}

final class MaxPoolOp: Op {
    let g: PoolGeometry
    /// The input is a fused conv+ReLU output consumed only here: drop dY where the max is <= 0.
    var reluMasked = false
    var fast: Bool { g.kernel == 2 && g.stride == 2 && g.pad == 0 }

    init(name: String, input: Int, output: Int, inShape: TensorShape, outShape: TensorShape, g: PoolGeometry) {
        self.g = g
        super.init(name: name, inputs: [input], output: output, inShape: inShape, outShape: outShape)
    }
    override var readsNCHWInput: Bool { true }
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
