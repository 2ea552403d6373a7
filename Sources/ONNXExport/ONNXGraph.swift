// ONNXGraph: a network (a resolved NetworkSpec and its flat parameters) as an ONNX graph, in plain
// Swift values; ONNXSerialize.swift packs it as an ONNX ModelProto with the protoc-c code.
//
// Graph contract: one input `input` float32 [N, C, H, W] (or [N, F] for a vector input), one
// output `logits` float32 [N, classes]; N is symbolic ("N"). Opset 17 of the default domain,
// IR version 8. Each layer kind writes its own nodes (CNNModel, Layers/<Kind>.swift `onnx`, with
// the node values and builder of CNNModel's ONNXNodes.swift): conv2d Conv, maxpool2d MaxPool,
// avgpool2d AveragePool, global_avgpool GlobalAveragePool, relu Relu, flatten Flatten, linear
// Gemm, dropout Dropout, groupnorm a decomposition (opset 17 has no GroupNormalization), residual
// the body's and shortcut's nodes and an Add.
// Initialisers keep the PyTorch state_dict names ("conv1.weight"); a GroupNorm's weight and bias
// are stored as [C, 1, 1] (same values) so they broadcast over H×W.
import CNNModel

/// The ONNX opset version written (default domain).
public let onnxOpsetVersion = 17
/// The ONNX IR version written (8 is the one paired with opset 17).
public let onnxIRVersion = 8

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
        var builder = ONNXNodeBuilder(parameters: parameters)
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
