// flatten: nn.Flatten(), C×H×W → C·H·W in PyTorch's order, no parameters and no JSON fields.
// ONNX: Flatten(axis = 1).
import Tensor

/// nn.Flatten().
struct FlattenLayer: Layer {
    static let typeName = "flatten"

    init() {}
    init(json f: LayerFields) throws {}
    func encode(into o: inout [String: Any]) {}

    func resolve(_ r: inout LayerResolution) throws -> TensorShape { .vector(r.input.count) }

    func compile(_ layer: ResolvedLayer, input: Int, into e: inout OpEmitter) -> Int {
        single(layer, into: &e) { name, out in
            FlattenOp(name: name, inputs: [input], output: out, inShape: layer.input, outShape: layer.output)
        }
    }

    func onnx(_ layer: ResolvedLayer, input x: String, into g: inout ONNXNodeBuilder) -> String {
        g.node("Flatten", [x], path: layer.path, [("axis", .int(1))])
    }
}

extension LayerSpec {
    /// nn.Flatten(): C×H×W → C·H·W (PyTorch's order).
    public static var flatten: LayerSpec { LayerSpec(FlattenLayer()) }
}

final class FlattenOp: Op {
    override var readsNCHWInput: Bool { true }
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
