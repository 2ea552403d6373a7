// avgpool2d: nn.AvgPool2d(kernel, stride, padding), floor mode, padding counted in the divisor, no
// parameters. JSON: "kernel_size", "stride" (kernel_size), "padding" (0, at most kernel_size/2).
// ONNX: AveragePool(count_include_pad = 1).
import Tensor

/// nn.AvgPool2d (floor mode, padding counted in the divisor).
struct AvgPool2dLayer: Pool2dLayer {
    var kernel: Int, stride: Int, padding: Int

    static let typeName = "avgpool2d"

    init(kernel: Int, stride: Int, padding: Int) { self.kernel = kernel; self.stride = stride; self.padding = padding }

    func compile(_ layer: ResolvedLayer, input: Int, into e: inout OpEmitter) -> Int {
        single(layer, into: &e) { name, out in
            AvgPoolOp(name: name, input: input, output: out, inShape: layer.input, outShape: layer.output, g: geometry)
        }
    }

    func onnx(_ layer: ResolvedLayer, input x: String, into g: inout ONNXNodeBuilder) -> String {
        g.node("AveragePool", [x], path: layer.path, onnxPoolAttributes + [("count_include_pad", .int(1))])
    }
}

extension LayerSpec {
    /// nn.AvgPool2d(kernel, stride, padding) (floor mode, padding counted in the divisor).
    public static func avgPool2d(kernel: Int, stride: Int, padding: Int) -> LayerSpec {
        LayerSpec(AvgPool2dLayer(kernel: kernel, stride: stride, padding: padding))
    }
}

final class AvgPoolOp: Op {
    let g: PoolGeometry
    init(name: String, input: Int, output: Int, inShape: TensorShape, outShape: TensorShape, g: PoolGeometry) {
        self.g = g
        super.init(name: name, inputs: [input], output: output, inShape: inShape, outShape: outShape)
    }
    override var readsNCHWInput: Bool { true }
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
