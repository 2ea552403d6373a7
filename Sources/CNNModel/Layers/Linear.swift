// linear: nn.Linear(in, out) with bias, weight [out, in] and bias [out] both U(±1/√in). JSON:
// "out_features", optional "in_features" (checked against the input). ONNX: Gemm(transB = 1),
// x·Wᵀ + b.
import Tensor

/// nn.Linear with bias.
struct LinearLayer: Layer {
    var outFeatures: Int
    /// Checked against the input's features when given.
    var inFeatures: Int?

    static let typeName = "linear"

    init(outFeatures: Int, inFeatures: Int?) { self.outFeatures = outFeatures; self.inFeatures = inFeatures }

    init(json f: LayerFields) throws {
        self.init(outFeatures: try f.int("out_features"), inFeatures: try f.optInt("in_features"))
    }

    func encode(into o: inout [String: Any]) {
        o["out_features"] = outFeatures
        if let inFeatures { o["in_features"] = inFeatures }
    }

    func resolve(_ r: inout LayerResolution) throws -> TensorShape {
        guard case let .vector(f) = r.input else { throw r.fail("linear needs a vector input; add {\"type\": \"flatten\"} before it") }
        if let inFeatures, inFeatures != f { throw r.fail("in_features is \(inFeatures) but the input has \(f) features") }
        guard outFeatures >= 1 else { throw r.bad("out_features", "must be >= 1, got \(outFeatures)") }
        r.add("weight", [outFeatures, f]); r.add("bias", [outFeatures])
        return .vector(outFeatures)
    }

    func initialise(_ layer: ResolvedLayer, params: UnsafeMutablePointer<Float>, rng: inout SplitMix64) {
        uniformInit(layer, fanIn: layer.input.count, params: params, rng: &rng)
    }

    func compile(_ layer: ResolvedLayer, input: Int, into e: inout OpEmitter) -> Int {
        single(layer, into: &e) { name, out in
            LinearOp(name: name, input: input, output: out, inShape: layer.input, outShape: layer.output,
                     weight: layer.parameters[0].offset, bias: layer.parameters[1].offset)
        }
    }

    func onnx(_ layer: ResolvedLayer, input x: String, into g: inout ONNXNodeBuilder) -> String {
        let w = g.weight(layer.parameters[0]), b = g.weight(layer.parameters[1])
        return g.node("Gemm", [x, w, b], path: layer.path, [("alpha", .float(1)), ("beta", .float(1)), ("transB", .int(1))])
    }
}

extension LayerSpec {
    /// nn.Linear(in, out) with bias. `inFeatures` nil = inferred.
    public static func linear(outFeatures: Int, inFeatures: Int?) -> LayerSpec {
        LayerSpec(LinearLayer(outFeatures: outFeatures, inFeatures: inFeatures))
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
