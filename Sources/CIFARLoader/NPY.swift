// NPY: one array in numpy's .npy format (format version 1.0, or 2.0 for headers over 64 KiB):
//   "\x93NUMPY", major, minor, header length (u16 LE; u32 in 2.0), then an ASCII dict
//   {'descr': '<f4', 'fortran_order': False, 'shape': (N, C, H, W), } padded with spaces and a
//   '\n' so the data starts on a 64-byte boundary, then the data, C order, little-endian.
// Spec: https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html
// The header is written and parsed by the NPYFormat module (shared with FlowerCompat's tensors);
// this file decides which element types a file may hold and reads the data.
import NPYFormat

/// One named n-dimensional array as stored in an .npy/.npz file (little-endian bytes, C order).
public struct NPZArray: Sendable, Equatable {
    /// Element types we read and write.
    public enum DType: String, Sendable, CaseIterable {
        case float32, float64, int64, int32, uint8

        /// numpy's type string.
        public var descr: String {
            switch self {
            case .float32: return "<f4"
            case .float64: return "<f8"
            case .int64: return "<i8"
            case .int32: return "<i4"
            case .uint8: return "|u1"
            }
        }
        /// Bytes per element.
        public var size: Int {
            switch self {
            case .float32, .int32: return 4
            case .float64, .int64: return 8
            case .uint8: return 1
            }
        }
        /// numpy's type string as read: byte order '<' (or '=', native, on the little-endian
        /// machines this runs on) for multi-byte types; any order mark for one-byte ones.
        /// Big-endian ('>f4') is refused, never read as little-endian.
        init?(descr: String) {
            guard let order = descr.first, "<>=|".contains(order),
                  let match = DType.allCases.first(where: { $0.descr.dropFirst() == descr.dropFirst() }) else { return nil }
            guard match.size == 1 || order == "<" || order == "=" else { return nil }
            self = match
        }
    }

    /// The array's name (the member name without ".npy", e.g. "images" or "conv1.weight").
    public var name: String
    /// Dimension sizes; [] for a scalar.
    public var shape: [Int]
    /// Element type.
    public var dtype: DType
    /// The elements, little-endian, C order.
    public var data: [UInt8]

    /// An array from raw little-endian bytes; `data.count` must equal product(shape)·dtype.size.
    public init(name: String, shape: [Int], dtype: DType, data: [UInt8]) {
        precondition(data.count == (checkedProduct(shape) ?? -1) * dtype.size, "data size must match shape × element size")
        self.name = name; self.shape = shape; self.dtype = dtype; self.data = data
    }

    /// A float32 array (`floats.count` must equal the product of `shape`).
    public init(name: String, shape: [Int], floats: [Float]) {
        self.init(name: name, shape: shape, dtype: .float32, data: floats.withUnsafeBytes { Array($0) })
    }

    /// An int64 array (`values.count` must equal the product of `shape`).
    public init(name: String, shape: [Int], int64s values: [Int64]) {
        self.init(name: name, shape: shape, dtype: .int64, data: values.withUnsafeBytes { Array($0) })
    }

    /// Number of elements.
    public var count: Int { shape.reduce(1, *) }

    /// The elements as Float (converting from any numeric dtype; uint8 is not scaled).
    public func floats() -> [Float] {
        data.withUnsafeBytes { raw in
            switch dtype {
            case .float32: return Array(raw.bindMemory(to: Float.self))
            case .float64: return raw.bindMemory(to: Double.self).map { Float($0) }
            case .int64: return raw.bindMemory(to: Int64.self).map { Float($0) }
            case .int32: return raw.bindMemory(to: Int32.self).map { Float($0) }
            case .uint8: return raw.map { Float($0) }
            }
        }
    }

    /// The elements as Int64 (floats are truncated toward zero).
    public func int64s() -> [Int64] {
        data.withUnsafeBytes { raw in
            switch dtype {
            case .int64: return Array(raw.bindMemory(to: Int64.self))
            case .int32: return raw.bindMemory(to: Int32.self).map { Int64($0) }
            case .uint8: return raw.map { Int64($0) }
            case .float32: return raw.bindMemory(to: Float.self).map { $0.isFinite ? Int64($0) : 0 }
            case .float64: return raw.bindMemory(to: Double.self).map { $0.isFinite ? Int64($0) : 0 }
            }
        }
    }

    /// The .npy header (magic through padding) for this array.
    func npyHeader() -> [UInt8] { NPYFormat.header(descr: dtype.descr, shape: shape) }

    /// Parses an .npy file held in `bytes[range]` (`path` names it in errors).
    static func parseNPY(_ bytes: [UInt8], _ range: Range<Int>, name: String, path: String) throws -> NPZArray {
        let where_ = "\(path): \(name).npy"
        let h: NPYFormat.Header
        do {
            h = try bytes.withUnsafeBytes { all in
                Result { () throws(NPYFormat.ParseError) in
                    try NPYFormat.parseHeader(UnsafeRawBufferPointer(rebasing: all[range]))
                }
            }.get()
        } catch .truncated(let detail) {
            throw LoaderError.truncated(path: where_, detail: detail)
        } catch .wrongMagic(let found) {
            throw LoaderError.wrongMagic(path: where_, expected: "93 4e 55 4d 50 59 (\\x93NUMPY)", found: hexPrefix(found, 6))
        } catch .malformed(let detail) {
            throw LoaderError.malformed(path: where_, detail: detail)
        }
        guard let dtype = DType(descr: h.descr) else {
            throw LoaderError.malformed(path: where_, detail: "element type '\(h.descr.prefix(40))' is not supported; save as float32, float64, int64, int32 or uint8, little-endian")
        }
        // Fortran order is the same bytes as C order when at most one dimension exceeds 1.
        if h.fortranOrder == true && h.shape.filter({ $0 > 1 }).count > 1 {
            throw LoaderError.malformed(path: where_, detail: "array is in Fortran order; save it with numpy.ascontiguousarray first")
        }
        guard let size = checkedProduct([h.count, dtype.size]) else {
            throw LoaderError.malformed(path: where_, detail: "shape \(h.shapeText) is impossibly large")
        }
        let start = range.lowerBound + h.dataOffset
        guard range.upperBound - start >= size else {
            throw LoaderError.truncated(path: where_, detail: "shape \(h.shapeText) of \(h.descr) needs \(size) bytes, \(range.upperBound - start) present")
        }
        return NPZArray(name: name, shape: h.shape, dtype: dtype, data: Array(bytes[start ..< start + size]))
    }
}
