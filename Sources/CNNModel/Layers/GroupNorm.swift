// groupnorm: nn.GroupNorm(groups, channels, eps) with affine weight (ones) and bias (zeros) per
// channel. JSON: "num_groups" (dividing the input channels), "eps" (1e-5). ONNX: opset 17 has no
// GroupNormalization (it came in 18 with per-group affine parameters, fixed to per-channel in 21),
// so its decomposition: Reshape [N, G, -1] → ReduceMean → Sub → Mul → ReduceMean → Add eps →
// Sqrt → Div → Reshape [N, C, H, W] → Mul weight [C,1,1] → Add bias [C,1,1]; the weight and bias
// are stored as [C, 1, 1] (same values) so they broadcast over H×W.
import Tensor

/// nn.GroupNorm with affine parameters.
struct GroupNormLayer: Layer {
    var groups: Int, eps: Double

    static let typeName = "groupnorm"

    init(groups: Int, eps: Double) { self.groups = groups; self.eps = eps }
    init(json f: LayerFields) throws { self.init(groups: try f.int("num_groups"), eps: try f.double("eps", 1e-5)) }
    func encode(into o: inout [String: Any]) { o["num_groups"] = groups; o["eps"] = eps }

    func resolve(_ r: inout LayerResolution) throws -> TensorShape {
        let (c, _, _) = try r.image()
        guard groups >= 1, c % groups == 0 else {
            throw r.bad("num_groups", "must divide the \(c) input channels, got \(groups)")
        }
        guard eps > 0, eps.isFinite else { throw r.bad("eps", "must be > 0, got \(eps)") }
        r.add("weight", [c]); r.add("bias", [c])
        return r.input
    }

    func initialise(_ layer: ResolvedLayer, params: UnsafeMutablePointer<Float>, rng: inout SplitMix64) {
        guard layer.parameters.count == 2 else { return }
        params.advanced(by: layer.parameters[0].offset).update(repeating: 1, count: layer.parameters[0].count)
        params.advanced(by: layer.parameters[1].offset).update(repeating: 0, count: layer.parameters[1].count)
    }

    func compile(_ layer: ResolvedLayer, input: Int, into e: inout OpEmitter) -> Int {
        single(layer, into: &e) { name, out in
            GroupNormOp(name: name, input: input, output: out, shape: layer.input, groups: groups, eps: eps,
                        weight: layer.parameters[0].offset, bias: layer.parameters[1].offset)
        }
    }

    func onnx(_ layer: ResolvedLayer, input x: String, into g: inout ONNXNodeBuilder) -> String {
        let path = layer.path
        guard case let .image(c, h, w) = layer.input else { return x }   // resolve() guarantees an image
        let grouped = g.node("Reshape", [x, g.constant(path + "/grouped_shape", dims: [3], .int64([0, Int64(groups), -1]))],
                             path: path, step: "Reshape")
        let mean = g.node("ReduceMean", [grouped], path: path, step: "Mean", [("axes", .ints([2])), ("keepdims", .int(1))])
        let centred = g.node("Sub", [grouped, mean], path: path)
        let squared = g.node("Mul", [centred, centred], path: path, step: "Square")
        let variance = g.node("ReduceMean", [squared], path: path, step: "Variance", [("axes", .ints([2])), ("keepdims", .int(1))])
        let shifted = g.node("Add", [variance, g.constant(path + "/eps", dims: [], .float32([Float(eps)]))], path: path, step: "AddEps")
        let std = g.node("Sqrt", [shifted], path: path)
        let normed = g.node("Div", [centred, std], path: path)
        let back = g.node("Reshape", [normed, g.constant(path + "/image_shape", dims: [4], .int64([0, Int64(c), Int64(h), Int64(w)]))],
                          path: path, step: "ReshapeBack")
        let scaled = g.node("Mul", [back, g.weight(layer.parameters[0], dims: [c, 1, 1])], path: path, step: "Scale")
        return g.node("Add", [scaled, g.weight(layer.parameters[1], dims: [c, 1, 1])], path: path, step: "Shift")
    }
}

extension LayerSpec {
    /// nn.GroupNorm(groups, channels, eps) with affine weight (ones) and bias (zeros).
    public static func groupNorm(groups: Int, eps: Double) -> LayerSpec { LayerSpec(GroupNormLayer(groups: groups, eps: eps)) }
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
