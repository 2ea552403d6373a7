// Shape inference and parameter naming for a NetworkSpec (see LayerSpec.swift for the rules).
// Output sizes follow PyTorch: conv/pool out = floor((in + 2·pad − k) / stride) + 1.

extension NetworkSpec {
    /// Checks every layer against the shape it receives and lays out the parameters in one flat
    /// buffer in PyTorch's state_dict order. Throws `ModelSpecError` naming the layer path for an
    /// inconsistent or zero-sized shape, and `.wrongOutput` unless the network ends in
    /// `.vector(classes)` (pass `classes: nil` to skip that check).
    public func resolve(input: TensorShape, classes: Int?) throws -> [ResolvedLayer] {
        if input.count <= 0 {
            throw ModelSpecError.inconsistentShape(layer: "input", input: "\(input)", why: "every dimension must be positive")
        }
        guard !layers.isEmpty else { throw ModelSpecError.malformed("the layer list is empty") }
        var offset = 0
        let (resolved, out) = try resolveList(layers, prefix: "", input: input, offset: &offset)
        if let classes, out != .vector(classes) { throw ModelSpecError.wrongOutput(got: "\(out)", classes: classes) }
        return resolved
    }

    /// Every parameter of the resolved network, flattened in buffer order.
    public static func parameterEntries(_ layers: [ResolvedLayer]) -> [ParameterEntry] {
        layers.flatMap { $0.parameters + parameterEntries($0.body) + parameterEntries($0.shortcut) }
    }
}

private func resolveList(_ list: [NamedLayer], prefix: String, input: TensorShape,
                         offset: inout Int) throws -> ([ResolvedLayer], TensorShape) {
    var shape = input
    var out: [ResolvedLayer] = []
    for (i, named) in list.enumerated() {
        let path = prefix + (named.name ?? String(i))
        let r = try resolveLayer(named.layer, path: path, input: shape, offset: &offset)
        out.append(r)
        shape = r.output
    }
    return (out, shape)
}

private func resolveLayer(_ layer: LayerSpec, path: String, input: TensorShape, offset: inout Int) throws -> ResolvedLayer {
    func fail(_ why: String) -> ModelSpecError { .inconsistentShape(layer: path, input: "\(input)", why: why) }
    func image() throws -> (Int, Int, Int) {
        guard case let .image(c, h, w) = input else {
            throw fail("\(layer.typeName) needs an image (C×H×W) input; it cannot follow a flatten or linear layer")
        }
        return (c, h, w)
    }
    func window(_ size: Int, _ k: Int, _ s: Int, _ p: Int, _ what: String) throws -> Int {
        guard k >= 1 else { throw ModelSpecError.badField(layer: path, field: "kernel_size", why: "must be >= 1, got \(k)") }
        guard s >= 1 else { throw ModelSpecError.badField(layer: path, field: "stride", why: "must be >= 1, got \(s)") }
        guard p >= 0 else { throw ModelSpecError.badField(layer: path, field: "padding", why: "must be >= 0, got \(p)") }
        let o = (size + 2 * p - k) / s + 1
        guard size + 2 * p >= k, o >= 1 else {
            throw fail("\(what) of \(k) with padding \(p) gives a zero-sized output; use a smaller kernel or more padding")
        }
        return o
    }
    var params: [ParameterEntry] = []
    func add(_ suffix: String, _ shape: [Int]) {
        params.append(ParameterEntry(name: "\(path).\(suffix)", shape: shape, offset: offset))
        offset += shape.reduce(1, *)
    }
    let output: TensorShape
    var body: [ResolvedLayer] = [], shortcut: [ResolvedLayer] = []
    switch layer {
    case let .conv2d(outC, k, s, p, inC):
        let (c, h, w) = try image()
        if let inC, inC != c { throw fail("in_channels is \(inC) but the input has \(c) channels") }
        guard outC >= 1 else { throw ModelSpecError.badField(layer: path, field: "out_channels", why: "must be >= 1, got \(outC)") }
        guard (1...7).contains(k) else { throw ModelSpecError.badField(layer: path, field: "kernel_size", why: "must be 1...7, got \(k)") }
        guard (1...2).contains(s) else { throw ModelSpecError.badField(layer: path, field: "stride", why: "must be 1 or 2, got \(s)") }
        guard p >= 0, p < k else { throw ModelSpecError.badField(layer: path, field: "padding", why: "must be 0..<kernel_size, got \(p)") }
        output = .image(channels: outC, height: try window(h, k, s, p, "kernel"), width: try window(w, k, s, p, "kernel"))
        add("weight", [outC, c, k, k]); add("bias", [outC])
    case let .maxPool2d(k, s, p), let .avgPool2d(k, s, p):
        let (c, h, w) = try image()
        guard p <= k / 2 else { throw ModelSpecError.badField(layer: path, field: "padding", why: "must be at most kernel_size/2, got \(p)") }
        output = .image(channels: c, height: try window(h, k, s, p, "pool window"), width: try window(w, k, s, p, "pool window"))
    case .globalAvgPool:
        let (c, _, _) = try image()
        output = .image(channels: c, height: 1, width: 1)
    case .relu, .dropout:
        if case let .dropout(p) = layer, !(p >= 0 && p < 1) {
            throw ModelSpecError.badField(layer: path, field: "p", why: "must be in [0, 1), got \(p)")
        }
        output = input
    case .flatten:
        output = .vector(input.count)
    case let .linear(outF, inF):
        guard case let .vector(f) = input else { throw fail("linear needs a vector input; add {\"type\": \"flatten\"} before it") }
        if let inF, inF != f { throw fail("in_features is \(inF) but the input has \(f) features") }
        guard outF >= 1 else { throw ModelSpecError.badField(layer: path, field: "out_features", why: "must be >= 1, got \(outF)") }
        output = .vector(outF)
        add("weight", [outF, f]); add("bias", [outF])
    case let .groupNorm(g, eps):
        let (c, _, _) = try image()
        guard g >= 1, c % g == 0 else {
            throw ModelSpecError.badField(layer: path, field: "num_groups", why: "must divide the \(c) input channels, got \(g)")
        }
        guard eps > 0, eps.isFinite else { throw ModelSpecError.badField(layer: path, field: "eps", why: "must be > 0, got \(eps)") }
        output = input
        add("weight", [c]); add("bias", [c])
    case let .residual(b, sc):
        guard !b.isEmpty else { throw ModelSpecError.badField(layer: path, field: "body", why: "must hold at least one layer") }
        let (rb, bodyOut) = try resolveList(b, prefix: path + ".body.", input: input, offset: &offset)
        let (rs, scOut) = try resolveList(sc, prefix: path + ".shortcut.", input: input, offset: &offset)
        guard bodyOut == scOut else {
            throw fail("the body gives \(bodyOut) but the shortcut gives \(scOut); add a shortcut (e.g. a 1x1 conv2d with the body's stride) that matches")
        }
        body = rb; shortcut = rs
        output = bodyOut
    }
    guard output.count > 0 else { throw fail("\(layer.typeName) gives a zero-sized output \(output)") }
    return ResolvedLayer(path: path, spec: layer, input: input, output: output, parameters: params, body: body, shortcut: shortcut)
}
