// ONNXGraph: a network (a resolved NetworkSpec and its flat parameters) as an ONNX graph, in plain
// Swift values; ONNXSerialize.swift packs it as an ONNX ModelProto with the protoc-c code.
//
// Graph contract: one input `input` float32 [N, C, H, W] (or [N, F] for a vector input), one
// output `logits` float32 [N, classes]; N is symbolic ("N"). Opset 17 of the default domain,
// IR version 8. Layer → nodes:
//   conv2d         Conv(kernel_shape, strides, pads) with weight and bias initialisers
//   maxpool2d      MaxPool (floor mode)       avgpool2d  AveragePool(count_include_pad = 1)
//   global_avgpool GlobalAveragePool          relu       Relu
//   flatten        Flatten(axis = 1)          linear     Gemm(transB = 1): x·Wᵀ + b
//   dropout        Dropout without ratio/training inputs: the identity at inference
//   groupnorm      opset 17 has no GroupNormalization (it came in 18 with per-group affine
//                  parameters, fixed to per-channel in 21), so its decomposition:
//                  Reshape [N, G, -1] → ReduceMean → Sub → Mul → ReduceMean → Add eps → Sqrt →
//                  Div → Reshape [N, C, H, W] → Mul weight [C,1,1] → Add bias [C,1,1]
//   residual       body nodes, shortcut nodes (none: identity), Add
// Initialisers keep the PyTorch state_dict names ("conv1.weight"); a GroupNorm's weight and bias
// are stored as [C, 1, 1] (same values) so they broadcast over H×W.
import CNNModel

/// The ONNX opset version written (default domain).
public let onnxOpsetVersion = 17
/// The ONNX IR version written (8 is the one paired with opset 17).
public let onnxIRVersion = 8

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
}

/// A whole inference graph.
public struct ONNXGraph: Equatable, Sendable {
    /// Graph name.
    public var name: String
    /// Input dimensions without the batch ([C, H, W] or [F]).
    public var inputDims: [Int]
    /// Number of logits per example.
    public var classes: Int
    /// Nodes in topological order.
    public var nodes: [ONNXNode]
    /// Constants.
    public var initializers: [ONNXInitializer]

    /// Name of the graph input.
    public static let inputName = "input"
    /// Name of the graph output.
    public static let outputName = "logits"
}

/// Why a network cannot be exported.
public enum ONNXExportError: Error, CustomStringConvertible, Equatable {
    /// The flat parameter array does not match the network's layout.
    case parameterCount(expected: Int, got: Int)
    /// The network's last layer does not give a vector of logits.
    case outputNotVector(String)
    /// protobuf-c failed to pack the model.
    case packFailed(String)

    public var description: String {
        switch self {
        case let .parameterCount(expected, got):
            return "the weights hold \(got) floats but the network needs \(expected); export with the --model/--model-spec the weights were trained with"
        case let .outputNotVector(shape):
            return "the network ends in a \(shape) output, not a vector of logits; end it with flatten and linear"
        case let .packFailed(why):
            return "could not serialise the ONNX model (\(why))"
        }
    }
}

extension ONNXGraph {
    /// The graph of `layers` (from `NetworkSpec.resolve`) for one-example input `input`, with
    /// `parameters` laid out as `NetworkSpec.parameterEntries(layers)` says.
    public init(layers: [ResolvedLayer], input: TensorShape, parameters: [Float], name: String = "flwr") throws {
        let entries = NetworkSpec.parameterEntries(layers)
        let needed = entries.reduce(0) { $0 + $1.count }
        guard needed == parameters.count else { throw ONNXExportError.parameterCount(expected: needed, got: parameters.count) }
        guard let last = layers.last, case let .vector(classes) = last.output else {
            throw ONNXExportError.outputNotVector(layers.last.map { "\($0.output)" } ?? "empty")
        }
        var builder = Builder(parameters: parameters)
        let out = builder.emit(layers, from: ONNXGraph.inputName)
        // The last value becomes the graph output `logits`.
        if let i = builder.nodes.lastIndex(where: { $0.outputs.contains(out) }) {
            builder.nodes[i].outputs = builder.nodes[i].outputs.map { $0 == out ? ONNXGraph.outputName : $0 }
            for j in builder.nodes.indices where j > i {
                builder.nodes[j].inputs = builder.nodes[j].inputs.map { $0 == out ? ONNXGraph.outputName : $0 }
            }
        } else {
            builder.nodes.append(ONNXNode(op: "Identity", inputs: [out], outputs: [ONNXGraph.outputName], name: "output/Identity", attributes: []))
        }
        self.init(name: name, inputDims: input.withBatch(1).dropFirst().map { $0 }, classes: classes,
                  nodes: builder.nodes, initializers: builder.initializers)
    }
}

/// Emits nodes layer by layer, naming each value "<layer path>/<step>".
private struct Builder {
    let parameters: [Float]
    var nodes: [ONNXNode] = []
    var initializers: [ONNXInitializer] = []

    init(parameters: [Float]) { self.parameters = parameters }

    /// Emits `layers` applied to value `x`; returns the name of the last value.
    mutating func emit(_ layers: [ResolvedLayer], from x: String) -> String {
        var value = x
        for layer in layers { value = emit(layer, from: value) }
        return value
    }

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

    mutating func constant(_ name: String, dims: [Int], _ values: ONNXInitializer.Values) -> String {
        initializers.append(ONNXInitializer(name: name, dims: dims, values: values))
        return name
    }

    mutating func emit(_ layer: ResolvedLayer, from x: String) -> String {
        let path = layer.path
        switch layer.spec {
        case let .conv2d(_, k, s, p, _):
            let w = weight(layer.parameters[0]), b = weight(layer.parameters[1])
            return node("Conv", [x, w, b], path: path, [("kernel_shape", .ints([k, k])), ("strides", .ints([s, s])),
                                                        ("pads", .ints([p, p, p, p])), ("dilations", .ints([1, 1])), ("group", .int(1))])
        case let .maxPool2d(k, s, p):
            return node("MaxPool", [x], path: path, [("kernel_shape", .ints([k, k])), ("strides", .ints([s, s])),
                                                     ("pads", .ints([p, p, p, p])), ("ceil_mode", .int(0))])
        case let .avgPool2d(k, s, p):
            return node("AveragePool", [x], path: path, [("kernel_shape", .ints([k, k])), ("strides", .ints([s, s])),
                                                         ("pads", .ints([p, p, p, p])), ("ceil_mode", .int(0)),
                                                         ("count_include_pad", .int(1))])
        case .globalAvgPool:
            return node("GlobalAveragePool", [x], path: path)
        case .relu:
            return node("Relu", [x], path: path)
        case .flatten:
            return node("Flatten", [x], path: path, [("axis", .int(1))])
        case .linear:
            let w = weight(layer.parameters[0]), b = weight(layer.parameters[1])
            return node("Gemm", [x, w, b], path: path, [("alpha", .float(1)), ("beta", .float(1)), ("transB", .int(1))])
        case .dropout:
            return node("Dropout", [x], path: path)
        case let .groupNorm(groups, eps):
            guard case let .image(c, h, w) = layer.input else { return x }   // resolve() guarantees an image
            let grouped = node("Reshape", [x, constant(path + "/grouped_shape", dims: [3], .int64([0, Int64(groups), -1]))],
                               path: path, step: "Reshape")
            let mean = node("ReduceMean", [grouped], path: path, step: "Mean", [("axes", .ints([2])), ("keepdims", .int(1))])
            let centred = node("Sub", [grouped, mean], path: path)
            let squared = node("Mul", [centred, centred], path: path, step: "Square")
            let variance = node("ReduceMean", [squared], path: path, step: "Variance", [("axes", .ints([2])), ("keepdims", .int(1))])
            let shifted = node("Add", [variance, constant(path + "/eps", dims: [], .float32([Float(eps)]))], path: path, step: "AddEps")
            let std = node("Sqrt", [shifted], path: path)
            let normed = node("Div", [centred, std], path: path)
            let back = node("Reshape", [normed, constant(path + "/image_shape", dims: [4], .int64([0, Int64(c), Int64(h), Int64(w)]))],
                            path: path, step: "ReshapeBack")
            let scaled = node("Mul", [back, weight(layer.parameters[0], dims: [c, 1, 1])], path: path, step: "Scale")
            return node("Add", [scaled, weight(layer.parameters[1], dims: [c, 1, 1])], path: path, step: "Shift")
        case .residual:
            let body = emit(layer.body, from: x)
            let shortcut = emit(layer.shortcut, from: x)
            return node("Add", [body, shortcut], path: path)
        }
    }
}
