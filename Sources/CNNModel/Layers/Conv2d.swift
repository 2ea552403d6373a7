// conv2d: nn.Conv2d(in, out, kernel, stride, padding) with bias. Weight [Cout, Cin, k, k], bias
// [Cout], both initialised U(±1/√(Cin·k·k)) as PyTorch does. JSON: "out_channels", "kernel_size",
// "stride" (1), "padding" (0), optional "in_channels" (checked against the input). ONNX: Conv.
// The reference CNN's 3x3/pad-1/stride-1 convolutions take the implicit-im2col kernels
// (Conv2d.swift in Tensor, ReLU fused in forward); every other kernel/stride/padding the
// explicit-im2col path (ConvStrided.swift).
import Tensor

/// nn.Conv2d with bias.
struct Conv2dLayer: Layer {
    var outChannels: Int, kernel: Int, stride: Int, padding: Int
    /// Checked against the input's channels when given.
    var inChannels: Int?

    static let typeName = "conv2d"

    init(outChannels: Int, kernel: Int, stride: Int, padding: Int, inChannels: Int?) {
        self.outChannels = outChannels; self.kernel = kernel; self.stride = stride; self.padding = padding
        self.inChannels = inChannels
    }

    init(json f: LayerFields) throws {
        let k = try f.int("kernel_size")
        self.init(outChannels: try f.int("out_channels"), kernel: k, stride: try f.int("stride", 1),
                  padding: try f.int("padding", 0), inChannels: try f.optInt("in_channels"))
    }

    func encode(into o: inout [String: Any]) {
        o["out_channels"] = outChannels; o["kernel_size"] = kernel; o["stride"] = stride; o["padding"] = padding
        if let inChannels { o["in_channels"] = inChannels }
    }

    func resolve(_ r: inout LayerResolution) throws -> TensorShape {
        let (c, h, w) = try r.image()
        let (outC, k, s, p) = (outChannels, kernel, stride, padding)
        if let inChannels, inChannels != c { throw r.fail("in_channels is \(inChannels) but the input has \(c) channels") }
        guard outC >= 1 else { throw r.bad("out_channels", "must be >= 1, got \(outC)") }
        guard (1...7).contains(k) else { throw r.bad("kernel_size", "must be 1...7, got \(k)") }
        guard (1...2).contains(s) else { throw r.bad("stride", "must be 1 or 2, got \(s)") }
        guard p >= 0, p < k else { throw r.bad("padding", "must be 0..<kernel_size, got \(p)") }
        let output = TensorShape.image(channels: outC, height: try r.window(h, k, s, p, "kernel"),
                                       width: try r.window(w, k, s, p, "kernel"))
        r.add("weight", [outC, c, k, k]); r.add("bias", [outC])
        return output
    }

    func initialise(_ layer: ResolvedLayer, params: UnsafeMutablePointer<Float>, rng: inout SplitMix64) {
        guard case let .image(c, _, _) = layer.input else { return }
        uniformInit(layer, fanIn: c * kernel * kernel, params: params, rng: &rng)
    }

    func compile(_ layer: ResolvedLayer, input: Int, into e: inout OpEmitter) -> Int {
        guard case let .image(c, _, _) = layer.input else { return input }   // resolve() guarantees an image
        let g = ConvGeometry(inChannels: c, outChannels: outChannels, kernel: kernel, stride: stride, pad: padding)
        return single(layer, into: &e) { name, out in
            ConvOp(name: name, input: input, output: out, inShape: layer.input, outShape: layer.output, g: g,
                   weight: layer.parameters[0].offset, bias: layer.parameters[1].offset)
        }
    }

    func onnx(_ layer: ResolvedLayer, input x: String, into g: inout ONNXNodeBuilder) -> String {
        let (k, s, p) = (kernel, stride, padding)
        let w = g.weight(layer.parameters[0]), b = g.weight(layer.parameters[1])
        return g.node("Conv", [x, w, b], path: layer.path, [("kernel_shape", .ints([k, k])), ("strides", .ints([s, s])),
                                                            ("pads", .ints([p, p, p, p])), ("dilations", .ints([1, 1])),
                                                            ("group", .int(1))])
    }
}

extension LayerSpec {
    /// nn.Conv2d(in, out, kernel, stride, padding) with bias. `inChannels` nil = inferred.
    public static func conv2d(outChannels: Int, kernel: Int, stride: Int, padding: Int, inChannels: Int?) -> LayerSpec {
        LayerSpec(Conv2dLayer(outChannels: outChannels, kernel: kernel, stride: stride, padding: padding, inChannels: inChannels))
    }

    /// A conv2d layer's arguments (nil for other kinds), e.g. for benchmarks that pick shapes.
    public var convolution: (outChannels: Int, kernel: Int, stride: Int, padding: Int)? {
        guard let c = layer as? Conv2dLayer else { return nil }
        return (c.outChannels, c.kernel, c.stride, c.padding)
    }
}

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
    override var readsNCHWInput: Bool { true }
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
