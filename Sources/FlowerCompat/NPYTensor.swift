// Flower's tensors: each one is the bytes numpy's `np.save(..., allow_pickle=False)` writes
// (Flower's `ndarray_to_bytes`): "\x93NUMPY", major, minor, header length (u16 LE in 1.0,
// u32 LE in 2.0/3.0), an ASCII dict {'descr': '<f4', 'fortran_order': False, 'shape': (32, 1, 3, 3), }
// padded with spaces and '\n', then the elements in C order.
// Spec: https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html
//
// A peer sends these bytes, so the reader is stricter than CIFARLoader's file reader: only
// little-endian float32 and float64 ('<f4', '<f8'), C order only, a bounded number of dimensions,
// and the data must be exactly product(shape) × itemsize bytes (checked with overflow-safe
// arithmetic before anything is allocated, so a huge declared shape costs nothing).

import Foundation

/// Reads and writes one float tensor in numpy's `.npy` format.
public enum NPYTensor {
    /// Most dimensions accepted in one tensor's shape (FlowerWire's limit too).
    public static let maxDimensions = 32
    /// Longest header accepted (numpy writes ~100 bytes; its own reader stops at 10,000).
    public static let maxHeaderBytes = 65_536

    /// Element types a tensor may carry.
    public enum DType: String, Sendable {
        case float32 = "<f4", float64 = "<f8"
        var size: Int { self == .float32 ? 4 : 8 }
    }

    /// A parsed header: where the data starts, the shape and the element type.
    public struct Header: Sendable, Equatable {
        public var shape: [Int]
        public var dtype: DType
        public var dataOffset: Int
        /// Elements: the product of `shape`.
        public var count: Int
    }

    /// Parses and checks the header of `bytes` (tensor `index` in its message, for errors):
    /// the data after it must be exactly `count × itemsize` bytes.
    public static func header(_ bytes: UnsafeRawBufferPointer, index: Int) throws(CompatError) -> Header {
        func bad(_ detail: String) -> CompatError { .badTensor(index: index, detail: detail) }
        let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]
        guard bytes.count >= 10 else { throw bad("\(bytes.count) bytes, shorter than an .npy header (truncated?)") }
        guard bytes.prefix(6).elementsEqual(magic) else {
            throw bad("not .npy bytes (no \\x93NUMPY magic); Flower clients send np.save output (tensor_type numpy.ndarray)")
        }
        let major = bytes[6]
        var headerLength = 0, prefix = 10
        switch major {
        case 1:
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
        case 2, 3:
            guard bytes.count >= 12 else { throw bad("header cut short (truncated .npy)") }
            prefix = 12
            headerLength = (0 ..< 4).reduce(0) { $0 | Int(bytes[8 + $1]) << (8 * $1) }
        default:
            throw bad(".npy format version \(major) is not supported (1, 2 and 3 are)")
        }
        guard headerLength <= maxHeaderBytes else { throw bad("header of \(headerLength) bytes exceeds \(maxHeaderBytes)") }
        guard bytes.count - prefix >= headerLength else {
            throw bad("header of \(headerLength) bytes but only \(bytes.count - prefix) present (truncated .npy)")
        }
        guard let dict = String(validating: bytes[prefix ..< prefix + headerLength], as: UTF8.self) else {
            throw bad("header is not text")
        }
        guard let descr = field(dict, "descr")?.trimmingCharacters(in: ["'", "\""]) else {
            throw bad("header has no 'descr': \(dict.prefix(200))")
        }
        guard let dtype = DType(rawValue: descr) else {
            let hint = descr.hasPrefix(">") ? "big-endian data is not accepted; send little-endian ('<')" :
                "flwr carries float32 and float64 only; convert with arr.astype(np.float32)"
            throw bad("dtype '\(descr.prefix(40))' refused: \(hint)")
        }
        guard let order = field(dict, "fortran_order") else { throw bad("header has no 'fortran_order'") }
        guard order == "False" else {
            throw bad("array is in Fortran order; send np.ascontiguousarray(arr) instead")
        }
        guard let shapeText = field(dict, "shape"), shapeText.hasPrefix("("), shapeText.hasSuffix(")") else {
            throw bad("header has no readable 'shape': \(dict.prefix(200))")
        }
        let parts = shapeText.dropFirst().dropLast().split(separator: ",", omittingEmptySubsequences: false)
            .map { $0.trimmingCharacters(in: [" "]) }
        // "(3,)" splits into ["3", ""]; "()" into [""].
        let dims = parts.last == "" ? Array(parts.dropLast()) : parts
        guard dims.count <= maxDimensions else { throw bad("\(dims.count) dimensions exceed the limit of \(maxDimensions)") }
        var shape: [Int] = []
        var count = 1
        for d in dims {
            guard d.count <= 19, let v = Int(d), v >= 0 else { throw bad("bad dimension '\(d.prefix(40))' in shape \(shapeText.prefix(200))") }
            let (p, overflow) = count.multipliedReportingOverflow(by: v)
            guard !overflow else { throw bad("shape \(shapeText.prefix(200)) is impossibly large") }
            shape.append(v); count = p
        }
        let (size, overflow) = count.multipliedReportingOverflow(by: dtype.size)
        let present = bytes.count - prefix - headerLength
        guard !overflow, size == present else {
            throw bad("shape \(shapeText.prefix(200)) of \(descr) needs \(overflow ? "more than \(Int.max)" : "\(size)") bytes of data, \(present) present\(present < size || overflow ? " (truncated, or a forged shape)" : "")")
        }
        return Header(shape: shape, dtype: dtype, dataOffset: prefix + headerLength, count: count)
    }

    /// Appends the elements of a checked tensor to `out` as Float (float64 is rounded to float32).
    public static func appendValues(_ bytes: UnsafeRawBufferPointer, _ header: Header, to out: inout [Float]) {
        let data = UnsafeRawBufferPointer(rebasing: bytes[header.dataOffset...])
        switch header.dtype {
        case .float32:
            let start = out.count
            out.append(contentsOf: repeatElement(0, count: header.count))
            out.withUnsafeMutableBytes { dst in
                UnsafeMutableRawBufferPointer(rebasing: dst[start * 4 ..< (start + header.count) * 4]).copyMemory(from: data)
            }
        case .float64:
            out.reserveCapacity(out.count + header.count)
            for i in 0 ..< header.count {
                out.append(Float(data.loadUnaligned(fromByteOffset: i * 8, as: Double.self)))
            }
        }
    }

    /// The `.npy` bytes numpy writes for a float32 array of `shape` (version 1.0, data 64-byte aligned).
    public static func encode(shape: [Int], values: UnsafeBufferPointer<Float>) -> [UInt8] {
        let dims = shape.map(String.init)
        let shapeText = "(" + dims.joined(separator: ", ") + (dims.count == 1 ? ",)" : ")")
        let dict = "{'descr': '<f4', 'fortran_order': False, 'shape': \(shapeText), }"
        var version: UInt8 = 1, prefix = 10
        if dict.utf8.count + 1 + 10 > 65535 { version = 2; prefix = 12 }
        let total = (prefix + dict.utf8.count + 1 + 63) / 64 * 64
        let headerLength = total - prefix
        var out: [UInt8] = []
        out.reserveCapacity(total + values.count * 4)
        out += [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, version, 0]
        if version == 1 {
            out += [UInt8(headerLength & 0xFF), UInt8(headerLength >> 8)]
        } else {
            out += (0 ..< 4).map { UInt8((headerLength >> (8 * $0)) & 0xFF) }
        }
        out += Array(dict.utf8)
        out += [UInt8](repeating: 0x20, count: total - out.count - 1)
        out.append(0x0A)
        out.append(contentsOf: UnsafeRawBufferPointer(values))
        return out
    }

    /// The text of `'key': value` in a numpy header dict (a tuple value kept whole).
    private static func field(_ dict: String, _ key: String) -> String? {
        guard let keyRange = dict.range(of: "'\(key)':") else { return nil }
        let rest = dict[keyRange.upperBound...].drop(while: { $0 == " " })
        if rest.first == "(" {
            guard let close = rest.firstIndex(of: ")") else { return nil }
            return String(rest[rest.startIndex ... close])
        }
        let end = rest.firstIndex(where: { $0 == "," || $0 == "}" }) ?? rest.endIndex
        return String(rest[rest.startIndex ..< end]).trimmingCharacters(in: [" "])
    }
}
