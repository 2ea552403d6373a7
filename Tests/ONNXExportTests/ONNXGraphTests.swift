// The ONNX graph of small networks: nodes, attributes and initialisers checked by hand, and the
// packed bytes read back by protobuf-c's own unpacker.
import CNNModel
import CONNXProto
@testable import ONNXExport
import Testing

@Suite struct ONNXGraphTests {
    /// conv(2, k3, pad 1) → relu → maxpool 2 → flatten → linear(3) on 1×4×4.
    @Test func smallCNNBecomesConvReluMaxPoolFlattenGemm() throws {
        let spec = NetworkSpec(layers: [
            NamedLayer(.conv2d(outChannels: 2, kernel: 3, stride: 1, padding: 1, inChannels: nil), name: "conv1"),
            NamedLayer(.relu), NamedLayer(.maxPool2d(kernel: 2, stride: 2, padding: 0)), NamedLayer(.flatten),
            NamedLayer(.linear(outFeatures: 3, inFeatures: nil), name: "fc"),
        ])
        let input = TensorShape.image(channels: 1, height: 4, width: 4)
        let layers = try spec.resolve(input: input, classes: 3)
        let count = NetworkSpec.parameterEntries(layers).reduce(0) { $0 + $1.count }
        #expect(count == 2 * 9 + 2 + 3 * 8 + 3)
        let params = (0 ..< count).map(Float.init)
        let graph = try ONNXGraph(layers: layers, input: input, parameters: params)
        #expect(graph.inputDims == [1, 4, 4] && graph.classes == 3)
        #expect(graph.nodes.map(\.op) == ["Conv", "Relu", "MaxPool", "Flatten", "Gemm"])
        #expect(graph.nodes[0].inputs == ["input", "conv1.weight", "conv1.bias"])
        #expect(graph.nodes[1].inputs == ["conv1/Conv"] && graph.nodes[4].inputs == ["3/Flatten", "fc.weight", "fc.bias"])
        #expect(graph.nodes.last?.outputs == ["logits"])
        #expect(graph.nodes[0].attributes.first { $0.0 == "pads" }?.1 == .ints([1, 1, 1, 1]))
        #expect(graph.nodes[4].attributes.first { $0.0 == "transB" }?.1 == .int(1))
        #expect(graph.initializers.map(\.name) == ["conv1.weight", "conv1.bias", "fc.weight", "fc.bias"])
        #expect(graph.initializers[0].dims == [2, 1, 3, 3] && graph.initializers[2].dims == [3, 8])
        #expect(graph.initializers[1].values == .float32([18, 19]), "bias follows the 18 weights in the flat buffer")
    }

    @Test func wrongWeightCountIsAClearError() throws {
        let spec = Zoo.mlp(hidden: [4], classes: 2)
        let layers = try spec.resolve(input: .vector(3), classes: 2)
        #expect(throws: ONNXExportError.parameterCount(expected: 3 * 4 + 4 + 4 * 2 + 2, got: 5)) {
            _ = try ONNXGraph(layers: layers, input: .vector(3), parameters: [1, 2, 3, 4, 5])
        }
        #expect("\(ONNXExportError.parameterCount(expected: 26, got: 5))".contains("--model"))
    }

    /// The packed ModelProto unpacks with protobuf-c into the same graph.
    @Test func packedModelUnpacksWithProtobufC() throws {
        let spec = Zoo.mlp(hidden: [4], classes: 2)
        let layers = try spec.resolve(input: .vector(3), classes: 2)
        let graph = try ONNXGraph(layers: layers, input: .vector(3), parameters: (0 ..< 26).map(Float.init))
        let bytes = try graph.serialized()
        let model = try #require(bytes.withUnsafeBufferPointer { onnx__model_proto__unpack(nil, $0.count, $0.baseAddress) })
        defer { onnx__model_proto__free_unpacked(model, nil) }
        #expect(model.pointee.ir_version == 8 && model.pointee.opset_import[0]!.pointee.version == 17)
        let g = try #require(model.pointee.graph)
        #expect(g.pointee.n_node == 4 && g.pointee.n_initializer == 4)
        #expect(String(cString: g.pointee.node[1]!.pointee.op_type) == "Gemm")
        #expect(String(cString: g.pointee.input[0]!.pointee.name) == "input")
        #expect(String(cString: g.pointee.output[0]!.pointee.name) == "logits")
        let w = g.pointee.initializer[0]!.pointee
        #expect(String(cString: w.name) == "1.weight" && w.n_dims == 2 && w.dims[0] == 4 && w.dims[1] == 3)
        #expect(w.raw_data.len == 48)
        let dims = g.pointee.input[0]!.pointee.type.pointee.tensor_type.pointee.shape.pointee
        #expect(dims.n_dim == 2 && String(cString: dims.dim[0]!.pointee.dim_param) == "N" && dims.dim[1]!.pointee.dim_value == 3)
    }
}
