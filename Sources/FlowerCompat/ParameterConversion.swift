// FlowerCore `Parameters` (one flat float32 buffer + named layout) ↔ Flower's list of unnamed
// `.npy` tensors. Flower's tensors carry no names: they take the names of the layout they must
// follow (the instruction's parameters, the server's model, or the client's model), position by
// position, and every shape is checked against it.
import FlowerCore

/// Converts between FlowerCore parameters and Flower's tensors.
public enum ParameterConversion {
    /// Each tensor of `p` as float32 `.npy` bytes, in layout order.
    public static func tensors(_ p: Parameters) -> FlowerTensors {
        p.values.withUnsafeBufferPointer { all in
            FlowerTensors(tensors: p.layout.map { spec in
                NPYTensor.encode(shape: spec.shape, values: UnsafeBufferPointer(rebasing: all[spec.offset ..< spec.offset + spec.count]))
            })
        }
    }

    /// Flower tensors as parameters laid out like `reference` (same count and shapes, its names);
    /// without a reference, the tensors' own shapes under the names `param_0`, `param_1`, ...
    public static func parameters(_ t: FlowerTensors, like reference: Parameters?) throws(CompatError) -> Parameters {
        guard t.tensorType == FlowerTensors.numpyType else {
            throw .layoutMismatch("tensor_type \"\(t.tensorType.prefix(64))\" is not \(FlowerTensors.numpyType); Flower's NumPyClient sends numpy.ndarray tensors (ndarrays_to_parameters)")
        }
        if let reference, t.tensors.count != reference.layout.count {
            throw .layoutMismatch("\(t.tensors.count) tensors where the model has \(reference.layout.count) (\(summary(reference))); the Flower client's model must match the server's (or run the server with --dataset none to take the first client's model)")
        }
        var headers: [NPYTensor.Header] = []
        headers.reserveCapacity(t.tensors.count)
        var total = 0
        for (i, bytes) in t.tensors.enumerated() {
            let h = try bytes.withUnsafeBytes { raw in Result { () throws(CompatError) in try NPYTensor.header(raw, index: i) } }.get()
            if let reference {
                let spec = reference.layout[i]
                guard h.shape == spec.shape else {
                    throw .layoutMismatch("tensor #\(i) has shape \(h.shape) where \(spec.name) \(spec.shape) was expected")
                }
            }
            let (sum, overflow) = total.addingReportingOverflow(h.count)
            guard !overflow else { throw .layoutMismatch("the tensors' sizes overflow") }
            total = sum
            headers.append(h)
        }
        var values: [Float] = []
        values.reserveCapacity(total)
        for (bytes, h) in zip(t.tensors, headers) {
            bytes.withUnsafeBytes { NPYTensor.appendValues($0, h, to: &values) }
        }
        let shapes: [(name: String, shape: [Int])] = headers.enumerated().map { i, h in
            (reference?.layout[i].name ?? "param_\(i)", h.shape)
        }
        do {
            return try Parameters(shapes: shapes, values: values)
        } catch {
            throw .layoutMismatch("\(error)")
        }
    }

    /// "N tensors, first conv1.weight [32, 1, 3, 3]": a short description for errors.
    static func summary(_ p: Parameters) -> String {
        guard let first = p.layout.first else { return "no tensors" }
        return "\(p.layout.count) tensors, the first \(first.name) \(first.shape)"
    }
}
