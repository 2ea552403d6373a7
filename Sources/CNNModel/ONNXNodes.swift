// ONNX nodes as plain Swift values, and the builder every layer kind writes its nodes into
// (Layers/<Kind>.swift `onnx`). Module ONNXExport assembles them into a graph (ONNXGraph) and
// packs it as an ONNX ModelProto; nothing here depends on protobuf.

/// One attribute of a node.
public enum ONNXAttribute: Equatable, Sendable {
    case int(Int)
    case ints([Int])
    case float(Float)
}

/// One node: an operator applied to named values.
public struct ONNXNode: Equatable, Sendable {
    /// ONNX operator type ("Conv", "Gemm", ...).
    public var op: String
    /// Input value names.
    public var inputs: [String]
    /// Output value names.
    public var outputs: [String]
    /// Unique node name (the layer path and a step, e.g. "2.body.0/Conv").
    public var name: String
    /// Attributes by name, in a stable order.
    public var attributes: [(String, ONNXAttribute)]

    /// A node of `op` from `inputs` to `outputs`.
    public init(op: String, inputs: [String], outputs: [String], name: String, attributes: [(String, ONNXAttribute)]) {
        self.op = op; self.inputs = inputs; self.outputs = outputs; self.name = name; self.attributes = attributes
    }

    public static func == (a: ONNXNode, b: ONNXNode) -> Bool {
        a.op == b.op && a.inputs == b.inputs && a.outputs == b.outputs && a.name == b.name
            && a.attributes.map(\.0) == b.attributes.map(\.0) && a.attributes.map(\.1) == b.attributes.map(\.1)
    }
}

/// A constant tensor of the graph (weights, biases, shapes).
public struct ONNXInitializer: Equatable, Sendable {
    public enum Values: Equatable, Sendable {
        case float32([Float])
        case int64([Int64])
    }
    /// Value name (the PyTorch parameter name for weights).
    public var name: String
    /// Dimensions.
    public var dims: [Int]
    /// The elements, row-major.
    public var values: Values

    /// A constant `name` of `dims` holding `values`.
    public init(name: String, dims: [Int], values: Values) { self.name = name; self.dims = dims; self.values = values }
}

/// Collects a graph's nodes and initialisers while each layer writes its own (`Layer.onnx`),
/// naming each value "<layer path>/<step>".
public struct ONNXNodeBuilder {
    /// The network's flat parameters (weights are copied from here).
    public let parameters: [Float]
    /// Nodes so far, in topological order.
    public var nodes: [ONNXNode] = []
    /// Constants so far.
    public var initializers: [ONNXInitializer] = []

    /// An empty graph over `parameters`.
    public init(parameters: [Float]) { self.parameters = parameters }

    /// Emits `layers` applied to value `x`; returns the name of the last value.
    public mutating func emit(_ layers: [ResolvedLayer], from x: String) -> String {
        var value = x
        for layer in layers { value = layer.spec.layer.onnx(layer, input: value, into: &self) }
        return value
    }

    /// Appends node `op` of layer `path` (named "<path>/<step or op>"); returns its output's name.
    mutating func node(_ op: String, _ inputs: [String], path: String, step: String? = nil,
                       _ attributes: [(String, ONNXAttribute)] = []) -> String {
        let name = path + "/" + (step ?? op)
        nodes.append(ONNXNode(op: op, inputs: inputs, outputs: [name], name: name, attributes: attributes))
        return name
    }

    /// Adds parameter `entry` as a float initialiser (optionally with other dims) and returns its name.
    mutating func weight(_ entry: ParameterEntry, dims: [Int]? = nil) -> String {
        initializers.append(ONNXInitializer(name: entry.name, dims: dims ?? entry.shape,
                                            values: .float32(Array(parameters[entry.offset ..< entry.offset + entry.count]))))
        return entry.name
    }

    /// Adds constant `name` and returns its name.
    mutating func constant(_ name: String, dims: [Int], _ values: ONNXInitializer.Values) -> String {
        initializers.append(ONNXInitializer(name: name, dims: dims, values: values))
        return name
    }
}
