// global_avgpool: nn.AdaptiveAvgPool2d(1), C×H×W → C×1×1, no parameters and no JSON fields.
// ONNX: GlobalAveragePool.
import Tensor

/// nn.AdaptiveAvgPool2d(1).
struct GlobalAvgPoolLayer: Layer {
    static let typeName = "global_avgpool"

    init() {}
    init(json f: LayerFields) throws {}
    func encode(into o: inout [String: Any]) {}

    func resolve(_ r: inout LayerResolution) throws -> TensorShape {
        let (c, _, _) = try r.image()
        return .image(channels: c, height: 1, width: 1)
    }

    func compile(_ layer: ResolvedLayer, input: Int, into e: inout OpEmitter) -> Int {
        single(layer, into: &e) { name, out in
            GlobalAvgPoolOp(name: name, inputs: [input], output: out, inShape: layer.input, outShape: layer.output)
        }
    }

    func onnx(_ layer: ResolvedLayer, input x: String, into g: inout ONNXNodeBuilder) -> String {
        g.node("GlobalAveragePool", [x], path: layer.path)
    }
}

extension LayerSpec {
    /// nn.AdaptiveAvgPool2d(1): C×H×W → C×1×1.
    public static var globalAvgPool: LayerSpec { LayerSpec(GlobalAvgPoolLayer()) }
}

final class GlobalAvgPoolOp: Op {
    override var readsNCHWInput: Bool { true }
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
