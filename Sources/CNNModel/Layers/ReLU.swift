// relu: nn.ReLU(), no parameters and no JSON fields. ONNX: Relu. A ReLU reading a convolution's
// output that nothing else reads is folded into that convolution when the network compiles
// (NetworkCompile.swift); this op runs the others.
import Tensor

/// nn.ReLU().
struct ReLULayer: Layer {
    static let typeName = "relu"

    init() {}
    init(json f: LayerFields) throws {}
    func encode(into o: inout [String: Any]) {}

    func resolve(_ r: inout LayerResolution) throws -> TensorShape { r.input }

    func compile(_ layer: ResolvedLayer, input: Int, into e: inout OpEmitter) -> Int {
        single(layer, into: &e) { name, out in
            ReLUOp(name: name, inputs: [input], output: out, inShape: layer.input, outShape: layer.output)
        }
    }

    func onnx(_ layer: ResolvedLayer, input x: String, into g: inout ONNXNodeBuilder) -> String {
        g.node("Relu", [x], path: layer.path)
    }
}

extension LayerSpec {
    /// nn.ReLU().
    public static var relu: LayerSpec { LayerSpec(ReLULayer()) }
}

final class ReLUOp: Op {
    override func forward(_ p: Pass) { reluForward(p.act[inputs[0]], p.act[output], count: p.n * inShape.count) }
    override func backward(_ p: Pass, _ d0: UnsafeMutablePointer<Float>?, _ d1: UnsafeMutablePointer<Float>?) {
        guard let d0 else { return }
        let count = p.n * inShape.count
        d0.update(from: p.grad[output], count: count)
        reluBackward(d0, output: p.act[output], count: count, threads: p.threads)
    }
}
