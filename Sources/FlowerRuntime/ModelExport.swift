// `flwr export`: trained weights (.npz) and the network they belong to, written as an ONNX model.
import CNNModel
import FlowerLearning
import Foundation
import ONNXExport

/// Exports one network with its weights to ONNX.
public struct ModelExport {
    public let model: ModelSelection
    public let input: TensorShape
    public let classes: Int
    /// The weights (.npz, one float array per parameter, names and shapes checked).
    public let weights: String
    public let out: String

    public init(model: ModelSelection, input: TensorShape, classes: Int, weights: String, out: String) {
        self.model = model; self.input = input; self.classes = classes; self.weights = weights; self.out = out
    }

    /// Writes the ONNX file; returns the line the command prints.
    public func run() throws -> String {
        let spec = try model.networkSpec(input: input, classes: classes)
        let layers = try spec.resolve(input: input, classes: classes)
        let layout = NetworkSpec.parameterEntries(layers).map { (name: $0.name, shape: $0.shape) }
        let parameters = try loadWeights(weights, layout: layout)
        let graph = try ONNXGraph(layers: layers, input: input, parameters: parameters.values, name: model.label)
        try graph.write(to: out)
        return "wrote \(out): \(model.label), input [N, \(input.withBatch(1).dropFirst().map(String.init).joined(separator: ", "))] → logits [N, \(classes)], \(graph.nodes.count) nodes, \(parameters.values.count) parameters, ONNX opset \(onnxOpsetVersion)"
    }
}
