// dropout: nn.Dropout(p), no parameters. JSON: "p" (0.5), in [0, 1). While training it zeroes each
// activation with probability p (a seeded mask, reseeded by every `train` call) and scales the
// rest by 1/(1-p); the identity in evaluation. ONNX: Dropout without ratio/training inputs, the
// identity at inference.
import Tensor

/// nn.Dropout(p).
struct DropoutLayer: Layer {
    var p: Double

    static let typeName = "dropout"

    init(p: Double) { self.p = p }
    init(json f: LayerFields) throws { self.init(p: try f.double("p", 0.5)) }
    func encode(into o: inout [String: Any]) { o["p"] = p }

    func resolve(_ r: inout LayerResolution) throws -> TensorShape {
        guard p >= 0 && p < 1 else { throw r.bad("p", "must be in [0, 1), got \(p)") }
        return r.input
    }

    func compile(_ layer: ResolvedLayer, input: Int, into e: inout OpEmitter) -> Int {
        single(layer, into: &e) { name, out in DropoutOp(name: name, input: input, output: out, shape: layer.input, p: p) }
    }

    func onnx(_ layer: ResolvedLayer, input x: String, into g: inout ONNXNodeBuilder) -> String {
        g.node("Dropout", [x], path: layer.path)
    }
}

extension LayerSpec {
    /// nn.Dropout(p): zeroes each activation with probability p while training (seeded), scales
    /// the rest by 1/(1-p); the identity in evaluation.
    public static func dropout(p: Double) -> LayerSpec { LayerSpec(DropoutLayer(p: p)) }
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
    /// Masks from a generator derived from `train`'s seed and the op's index.
    override func beginTraining(seed: UInt64) { rng = SplitMix64(seed: seed ^ 0xD1B5_4A32_D192_ED03 &+ UInt64(index)) }
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
