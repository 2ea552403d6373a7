// Shape inference and parameter naming for a NetworkSpec (see LayerSpec.swift for the rules):
// the walk over the layer list and the checks every layer kind shares; each kind's own checks
// are its `resolve` (Layers/<Kind>.swift).
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

func resolveList(_ list: [NamedLayer], prefix: String, input: TensorShape,
                 offset: inout Int) throws -> ([ResolvedLayer], TensorShape) {
    var shape = input
    var out: [ResolvedLayer] = []
    for (i, named) in list.enumerated() {
        let path = prefix + (named.name ?? String(i))
        var r = LayerResolution(path: path, input: shape, typeName: named.layer.typeName, offset: offset)
        let output = try named.layer.layer.resolve(&r)
        guard output.count > 0 else { throw r.fail("\(named.layer.typeName) gives a zero-sized output \(output)") }
        offset = r.offset
        out.append(ResolvedLayer(path: path, spec: named.layer, input: shape, output: output, parameters: r.parameters,
                                 body: r.body, shortcut: r.shortcut))
        shape = output
    }
    return (out, shape)
}

/// One layer being resolved: its path and input, the parameters it declares, and the checks
/// layer kinds share.
struct LayerResolution {
    /// Path in the spec, e.g. "3" or "2.body.0".
    let path: String
    /// Shape of one input example.
    let input: TensorShape
    /// The layer's JSON type name (for messages).
    let typeName: String
    /// Next free offset in the flat parameter buffer.
    var offset: Int
    /// The parameters declared so far.
    var parameters: [ParameterEntry] = []
    /// A residual block's resolved body and shortcut.
    var body: [ResolvedLayer] = [], shortcut: [ResolvedLayer] = []

    init(path: String, input: TensorShape, typeName: String, offset: Int) {
        self.path = path; self.input = input; self.typeName = typeName; self.offset = offset
    }

    /// An inconsistent-shape error for this layer.
    func fail(_ why: String) -> ModelSpecError { .inconsistentShape(layer: path, input: "\(input)", why: why) }

    /// A bad-field error for this layer.
    func bad(_ field: String, _ why: String) -> ModelSpecError { .badField(layer: path, field: field, why: why) }

    /// The input's (C, H, W); throws unless it is an image.
    func image() throws -> (Int, Int, Int) {
        guard case let .image(c, h, w) = input else {
            throw fail("\(typeName) needs an image (C×H×W) input; it cannot follow a flatten or linear layer")
        }
        return (c, h, w)
    }

    /// Output size of a sliding window of `k` with stride `s` and padding `p` over `size`.
    func window(_ size: Int, _ k: Int, _ s: Int, _ p: Int, _ what: String) throws -> Int {
        guard k >= 1 else { throw bad("kernel_size", "must be >= 1, got \(k)") }
        guard s >= 1 else { throw bad("stride", "must be >= 1, got \(s)") }
        guard p >= 0 else { throw bad("padding", "must be >= 0, got \(p)") }
        let o = (size + 2 * p - k) / s + 1
        guard size + 2 * p >= k, o >= 1 else {
            throw fail("\(what) of \(k) with padding \(p) gives a zero-sized output; use a smaller kernel or more padding")
        }
        return o
    }

    /// A pooling window's output image (kernel `k`, stride `s`, padding `p`).
    func pool(_ k: Int, _ s: Int, _ p: Int) throws -> TensorShape {
        let (c, h, w) = try image()
        guard p <= k / 2 else { throw bad("padding", "must be at most kernel_size/2, got \(p)") }
        return .image(channels: c, height: try window(h, k, s, p, "pool window"), width: try window(w, k, s, p, "pool window"))
    }

    /// Declares parameter "<path>.<suffix>" of `shape` at the next offset.
    mutating func add(_ suffix: String, _ shape: [Int]) {
        parameters.append(ParameterEntry(name: "\(path).\(suffix)", shape: shape, offset: offset))
        offset += shape.reduce(1, *)
    }

    /// Resolves a nested list (paths "<prefix><i>") on this layer's input; its parameters take
    /// the next offsets.
    mutating func resolve(_ list: [NamedLayer], prefix: String) throws -> ([ResolvedLayer], TensorShape) {
        try resolveList(list, prefix: prefix, input: input, offset: &offset)
    }
}
