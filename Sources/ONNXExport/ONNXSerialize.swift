// ONNXSerialize: packs an ONNXGraph as an ONNX ModelProto with the code protoc-c generated from
// ONNX's own schema (proto/onnx/onnx.proto → Sources/CONNXProto). Every C struct, string and
// array lives in one arena freed after packing (the messages are built here, never unpacked, so
// `*__free_unpacked` is never called on them).
import CNNModel
import CONNXProto
import Foundation

/// Owns the C memory of one ModelProto under construction.
private final class Arena {
    private var blocks: [UnsafeMutableRawPointer] = []

    deinit { for b in blocks { free(b) } }

    /// `count` zeroed elements of `T`.
    func array<T>(_ type: T.Type, _ count: Int) -> UnsafeMutablePointer<T> {
        let raw = calloc(max(count, 1), MemoryLayout<T>.stride)!
        blocks.append(raw)
        return raw.bindMemory(to: T.self, capacity: max(count, 1))
    }

    /// A NUL-terminated copy of `s`.
    func string(_ s: String) -> UnsafeMutablePointer<CChar> {
        let p = strdup(s)!
        blocks.append(UnsafeMutableRawPointer(p))
        return p
    }

    /// One message of type `T`, initialised by protoc-c's `init`.
    func message<T>(_ make: () -> T, _ initialise: (UnsafeMutablePointer<T>) -> Void) -> UnsafeMutablePointer<T> {
        let p = array(T.self, 1)
        p.initialize(to: make())
        initialise(p)
        return p
    }

    /// A C array of pointers to `items`.
    func pointers<T>(_ items: [UnsafeMutablePointer<T>]) -> UnsafeMutablePointer<UnsafeMutablePointer<T>?> {
        let p = array(UnsafeMutablePointer<T>?.self, items.count)
        for (i, item) in items.enumerated() { p[i] = item }
        return p
    }

    /// A copy of `values` in C memory.
    func copy<T>(_ values: [T]) -> UnsafeMutablePointer<T> {
        let p = array(T.self, values.count)
        for (i, v) in values.enumerated() { p[i] = v }
        return p
    }
}

extension ONNXGraph {
    /// The ONNX file bytes (a packed ModelProto: IR version 8, opset 17, producer "flwr").
    public func serialized(producerVersion: String = "1") throws -> [UInt8] {
        let arena = Arena()
        let model = arena.message(Onnx__ModelProto.init, onnx__model_proto__init)
        model.pointee.has_ir_version = 1
        model.pointee.ir_version = Int64(onnxIRVersion)
        let opset = arena.message(Onnx__OperatorSetIdProto.init, onnx__operator_set_id_proto__init)
        opset.pointee.domain = arena.string("")
        opset.pointee.has_version = 1
        opset.pointee.version = Int64(onnxOpsetVersion)
        model.pointee.n_opset_import = 1
        model.pointee.opset_import = arena.pointers([opset])
        model.pointee.producer_name = arena.string("flwr")
        model.pointee.producer_version = arena.string(producerVersion)

        let graph = arena.message(Onnx__GraphProto.init, onnx__graph_proto__init)
        graph.pointee.name = arena.string(name)
        let nodeProtos = nodes.map { node(arena, $0) }
        graph.pointee.n_node = nodeProtos.count
        graph.pointee.node = arena.pointers(nodeProtos)
        let tensors = initializers.map { tensor(arena, $0) }
        graph.pointee.n_initializer = tensors.count
        graph.pointee.initializer = arena.pointers(tensors)
        graph.pointee.n_input = 1
        graph.pointee.input = arena.pointers([valueInfo(arena, ONNXGraph.inputName, dims: inputDims)])
        graph.pointee.n_output = 1
        graph.pointee.output = arena.pointers([valueInfo(arena, ONNXGraph.outputName, dims: [classes])])
        model.pointee.graph = graph

        let size = onnx__model_proto__get_packed_size(model)
        var out = [UInt8](repeating: 0, count: size)
        let written = out.withUnsafeMutableBufferPointer { onnx__model_proto__pack(model, $0.baseAddress) }
        guard written == size else { throw ONNXExportError.packFailed("packed \(written) of \(size) bytes") }
        return out
    }

    /// Writes the model to `path` (replacing it).
    public func write(to path: String) throws {
        let bytes = try serialized()
        do {
            try Data(bytes).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw ONNXExportError.packFailed("cannot write \(path): \(error.localizedDescription); check the directory exists and is writable")
        }
    }
}

private func node(_ arena: Arena, _ n: ONNXNode) -> UnsafeMutablePointer<Onnx__NodeProto> {
    let p = arena.message(Onnx__NodeProto.init, onnx__node_proto__init)
    p.pointee.op_type = arena.string(n.op)
    p.pointee.name = arena.string(n.name)
    p.pointee.n_input = n.inputs.count
    p.pointee.input = arena.copy(n.inputs.map { Optional(arena.string($0)) })
    p.pointee.n_output = n.outputs.count
    p.pointee.output = arena.copy(n.outputs.map { Optional(arena.string($0)) })
    let attributes = n.attributes.map { name, value -> UnsafeMutablePointer<Onnx__AttributeProto> in
        let a = arena.message(Onnx__AttributeProto.init, onnx__attribute_proto__init)
        a.pointee.name = arena.string(name)
        a.pointee.has_type = 1
        switch value {
        case let .int(v):
            a.pointee.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT
            a.pointee.has_i = 1; a.pointee.i = Int64(v)
        case let .ints(vs):
            a.pointee.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS
            a.pointee.n_ints = vs.count; a.pointee.ints = arena.copy(vs.map(Int64.init))
        case let .float(v):
            a.pointee.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT
            a.pointee.has_f = 1; a.pointee.f = v
        }
        return a
    }
    p.pointee.n_attribute = attributes.count
    p.pointee.attribute = arena.pointers(attributes)
    return p
}

private func tensor(_ arena: Arena, _ t: ONNXInitializer) -> UnsafeMutablePointer<Onnx__TensorProto> {
    let p = arena.message(Onnx__TensorProto.init, onnx__tensor_proto__init)
    p.pointee.name = arena.string(t.name)
    p.pointee.n_dims = t.dims.count
    p.pointee.dims = arena.copy(t.dims.map(Int64.init))
    p.pointee.has_data_type = 1
    // raw_data: the elements little-endian, as the ONNX spec requires (this target is x86-64/arm64).
    let bytes: [UInt8]
    switch t.values {
    case let .float32(v):
        p.pointee.data_type = Int32(ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT.rawValue)
        bytes = v.withUnsafeBytes { Array($0) }
    case let .int64(v):
        p.pointee.data_type = Int32(ONNX__TENSOR_PROTO__DATA_TYPE__INT64.rawValue)
        bytes = v.withUnsafeBytes { Array($0) }
    }
    p.pointee.has_raw_data = 1
    p.pointee.raw_data = ProtobufCBinaryData(len: bytes.count, data: arena.copy(bytes))
    return p
}

/// A float32 tensor value [N, dims...] with a symbolic batch dimension "N".
private func valueInfo(_ arena: Arena, _ name: String, dims: [Int]) -> UnsafeMutablePointer<Onnx__ValueInfoProto> {
    let v = arena.message(Onnx__ValueInfoProto.init, onnx__value_info_proto__init)
    v.pointee.name = arena.string(name)
    let type = arena.message(Onnx__TypeProto.init, onnx__type_proto__init)
    let tensorType = arena.message(Onnx__TypeProto__Tensor.init, onnx__type_proto__tensor__init)
    tensorType.pointee.has_elem_type = 1
    tensorType.pointee.elem_type = Int32(ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT.rawValue)
    let shape = arena.message(Onnx__TensorShapeProto.init, onnx__tensor_shape_proto__init)
    var dimProtos: [UnsafeMutablePointer<Onnx__TensorShapeProto__Dimension>] = []
    let batch = arena.message(Onnx__TensorShapeProto__Dimension.init, onnx__tensor_shape_proto__dimension__init)
    batch.pointee.value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM
    batch.pointee.dim_param = arena.string("N")
    dimProtos.append(batch)
    for d in dims {
        let dim = arena.message(Onnx__TensorShapeProto__Dimension.init, onnx__tensor_shape_proto__dimension__init)
        dim.pointee.value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE
        dim.pointee.dim_value = Int64(d)
        dimProtos.append(dim)
    }
    shape.pointee.n_dim = dimProtos.count
    shape.pointee.dim = arena.pointers(dimProtos)
    tensorType.pointee.shape = shape
    type.pointee.value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE
    type.pointee.tensor_type = tensorType
    v.pointee.type = type
    return v
}
