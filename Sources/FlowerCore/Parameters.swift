/// Where one named tensor lives inside a `Parameters` flat buffer.
public struct TensorSpec: Sendable, Hashable, Codable {
    /// Stable name, e.g. `conv1.weight`.
    public var name: String
    /// Dimensions, outermost first (PyTorch order).
    public var shape: [Int]
    /// First element's index in the flat buffer.
    public var offset: Int

    /// Number of elements: the product of `shape` (1 for a scalar).
    public var count: Int { shape.reduce(1, *) }

    public init(name: String, shape: [Int], offset: Int) {
        self.name = name
        self.shape = shape
        self.offset = offset
    }
}

/// A model's parameters: one flat float32 buffer plus a layout table `(name, shape, offset)` in
/// a stable order, so they travel over the wire and into aggregation without per-tensor copies.
public struct Parameters: Sendable, Equatable {
    /// The tensors, in order; offsets are contiguous and increasing.
    public private(set) var layout: [TensorSpec]
    /// All elements of all tensors, back to back.
    public var values: [Float]

    /// An empty model (no tensors).
    public init() {
        layout = []
        values = []
    }

    /// Builds parameters from `(name, shape)` pairs and a flat buffer laid out in that order.
    public init(shapes: [(name: String, shape: [Int])], values: [Float]) throws {
        var layout: [TensorSpec] = []
        layout.reserveCapacity(shapes.count)
        var offset = 0
        var seen = Set<String>()
        for (name, shape) in shapes {
            guard !seen.contains(name) else { throw ParametersError.duplicateName(name) }
            guard shape.allSatisfy({ $0 >= 0 }) else { throw ParametersError.badShape(name: name, shape: shape) }
            seen.insert(name)
            let spec = TensorSpec(name: name, shape: shape, offset: offset)
            offset += spec.count
            layout.append(spec)
        }
        guard offset == values.count else {
            throw ParametersError.sizeMismatch(expected: offset, got: values.count)
        }
        self.layout = layout
        self.values = values
    }

    /// Zero-filled parameters with the given layout.
    public init(zerosLike other: Parameters) {
        layout = other.layout
        values = [Float](repeating: 0, count: other.values.count)
    }

    /// Total number of elements across tensors.
    public var count: Int { values.count }

    /// The spec of the tensor called `name`, if any.
    public func spec(named name: String) -> TensorSpec? { layout.first { $0.name == name } }

    /// A copy of one tensor's elements.
    public func tensor(named name: String) -> [Float]? {
        guard let s = spec(named: name) else { return nil }
        return Array(values[s.offset ..< s.offset + s.count])
    }

    /// True when `other` has the same names and shapes in the same order.
    public func hasSameLayout(as other: Parameters) -> Bool {
        layout == other.layout
    }

    /// The first layout difference from `expected`, described for a log line; nil if none.
    public func layoutMismatch(against expected: Parameters) -> String? {
        if layout.count != expected.layout.count {
            return "has \(layout.count) tensors, expected \(expected.layout.count)"
        }
        for (a, b) in zip(layout, expected.layout) where a.name != b.name || a.shape != b.shape {
            return "tensor \(a.name) \(a.shape) where \(b.name) \(b.shape) was expected"
        }
        return nil
    }

    /// Index of the first NaN or infinite element, if any.
    /// A 16-lane pass first (x·0 is NaN exactly when x is NaN or infinite, and NaN sticks in the
    /// sum), then, only when it finds one, the scalar search for its index.
    public func firstNonFinite() -> Int? {
        values.withUnsafeBufferPointer { buf in
            let n = buf.count
            var probe = SIMD16<Float>()
            var i = 0
            if let base = buf.baseAddress {
                let raw = UnsafeRawPointer(base)
                while i + 16 <= n {
                    probe += raw.loadUnaligned(fromByteOffset: i * MemoryLayout<Float>.stride, as: SIMD16<Float>.self) * 0
                    i += 16
                }
            }
            var clean = true
            for k in 0 ..< 16 where probe[k] != 0 { clean = false }
            if clean {
                for j in i ..< n where !buf[j].isFinite { return j }
                return nil
            }
            for j in 0 ..< n where !buf[j].isFinite { return j }
            return nil
        }
    }
}

/// Invalid parameter layouts.
public enum ParametersError: Error, CustomStringConvertible, Equatable, Sendable {
    case duplicateName(String)
    case badShape(name: String, shape: [Int])
    case sizeMismatch(expected: Int, got: Int)

    public var description: String {
        switch self {
        case .duplicateName(let n):
            return "tensor name \(n) appears twice; every parameter tensor needs a unique name"
        case .badShape(let n, let s):
            return "tensor \(n) has shape \(s) with a negative dimension"
        case .sizeMismatch(let e, let g):
            return "layout describes \(e) elements but the buffer holds \(g); check the shapes"
        }
    }
}
