// NPY: one array in numpy's .npy format (format version 1.0, or 2.0 for headers over 64 KiB):
//   "\x93NUMPY", major, minor, header length (u16 LE; u32 in 2.0), then an ASCII dict
//   {'descr': '<f4', 'fortran_order': False, 'shape': (N, C, H, W), } padded with spaces and a
//   '\n' so the data starts on a 64-byte boundary, then the data, C order, little-endian.
// Spec: https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html
import Foundation

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
    func npyHeader() -> [UInt8] {
        let dims = shape.map(String.init)
        let shapeText = "(" + dims.joined(separator: ", ") + (dims.count == 1 ? ",)" : ")")
        let dict = "{'descr': '\(dtype.descr)', 'fortran_order': False, 'shape': \(shapeText), }"
        var version: UInt8 = 1, prefix = 10
        if dict.utf8.count + 1 + 10 > 65535 { version = 2; prefix = 12 }
        let total = (prefix + dict.utf8.count + 1 + 63) / 64 * 64
        let headerLength = total - prefix
        var out: [UInt8] = [0x93] + Array("NUMPY".utf8) + [version, 0]
        if version == 1 {
            out += [UInt8(headerLength & 0xFF), UInt8(headerLength >> 8)]
        } else {
            out += (0 ..< 4).map { UInt8((headerLength >> (8 * $0)) & 0xFF) }
        }
        out += Array(dict.utf8)
        out += [UInt8](repeating: 0x20, count: total - out.count - 1)
        out.append(0x0A)
        return out
    }

    /// Parses an .npy file held in `bytes[range]` (`path` names it in errors).
    static func parseNPY(_ bytes: [UInt8], _ range: Range<Int>, name: String, path: String) throws -> NPZArray {
        let where_ = "\(path): \(name).npy"
        let b = range.lowerBound
        guard range.count >= 10 else { throw LoaderError.truncated(path: where_, detail: "\(range.count) bytes, shorter than an .npy header") }
        guard bytes[b] == 0x93, bytes[b + 1 ..< b + 6].elementsEqual(Array("NUMPY".utf8)) else {
            throw LoaderError.wrongMagic(path: where_, expected: "93 4e 55 4d 50 59 (\\x93NUMPY)", found: hexPrefix(Array(bytes[b ..< b + 6]), 6))
        }
        let major = bytes[b + 6]
        var headerLength = 0, prefix = 10
        switch major {
        case 1: headerLength = Int(bytes[b + 8]) | Int(bytes[b + 9]) << 8
        case 2, 3:
            guard range.count >= 12 else { throw LoaderError.truncated(path: where_, detail: "header cut short") }
            prefix = 12
            headerLength = (0 ..< 4).reduce(0) { $0 | Int(bytes[b + 8 + $1]) << (8 * $1) }
        default:
            throw LoaderError.malformed(path: where_, detail: ".npy format version \(major) is not supported (1, 2 and 3 are)")
        }
        guard range.count >= prefix + headerLength else { throw LoaderError.truncated(path: where_, detail: "header cut short") }
        let dict = String(decoding: bytes[b + prefix ..< b + prefix + headerLength], as: UTF8.self)
        guard let descr = field(dict, "descr").map({ $0.trimmingCharacters(in: ["'", "\""]) }) else {
            throw LoaderError.malformed(path: where_, detail: "header has no 'descr': \(dict)")
        }
        guard let dtype = DType(descr: descr) else {
            throw LoaderError.malformed(path: where_, detail: "element type '\(descr)' is not supported; save as float32, float64, int64, int32 or uint8, little-endian")
        }
        guard let shapeText = field(dict, "shape"), shapeText.hasPrefix("("), shapeText.hasSuffix(")") else {
            throw LoaderError.malformed(path: where_, detail: "header has no readable 'shape': \(dict)")
        }
        let parts = shapeText.dropFirst().dropLast().split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let shape = try parts.map { p -> Int in
            guard let v = Int(p), v >= 0 else { throw LoaderError.malformed(path: where_, detail: "bad dimension '\(p)' in shape \(shapeText)") }
            return v
        }
        if field(dict, "fortran_order") == "True" && shape.filter({ $0 > 1 }).count > 1 {
            throw LoaderError.malformed(path: where_, detail: "array is in Fortran order; save it with numpy.ascontiguousarray first")
        }
        guard let elements = checkedProduct(shape), let size = checkedProduct([elements, dtype.size]) else {
            throw LoaderError.malformed(path: where_, detail: "shape \(shapeText) is impossibly large")
        }
        let start = b + prefix + headerLength
        guard range.upperBound - start >= size else {
            throw LoaderError.truncated(path: where_, detail: "shape \(shapeText) of \(descr) needs \(size) bytes, \(range.upperBound - start) present")
        }
        return NPZArray(name: name, shape: shape, dtype: dtype, data: Array(bytes[start ..< start + size]))
    }

    /// The text of `'key': value` in a numpy header dict (tuple values kept whole).
    private static func field(_ dict: String, _ key: String) -> String? {
        guard let keyRange = dict.range(of: "'\(key)':") else { return nil }
        let rest = dict[keyRange.upperBound...].drop(while: { $0 == " " })
        if rest.first == "(" {
            guard let close = rest.firstIndex(of: ")") else { return nil }
            return String(rest[rest.startIndex ... close])
        }
        let end = rest.firstIndex(where: { $0 == "," || $0 == "}" }) ?? rest.endIndex
        return String(rest[rest.startIndex ..< end]).trimmingCharacters(in: .whitespaces)
    }
}
