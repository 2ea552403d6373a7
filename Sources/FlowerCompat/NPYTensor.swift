// Flower's tensors: each one is the bytes numpy's `np.save(..., allow_pickle=False)` writes
// (Flower's `ndarray_to_bytes`): "\x93NUMPY", major, minor, header length (u16 LE in 1.0,
// u32 LE in 2.0/3.0), an ASCII dict {'descr': '<f4', 'fortran_order': False, 'shape': (32, 1, 3, 3), }
// padded with spaces and '\n', then the elements in C order.
// Spec: https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html
//
// A peer sends these bytes, so the reader is stricter than CIFARLoader's file reader: only
// little-endian float32 and float64 ('<f4', '<f8'), C order only, a bounded number of dimensions,
// and the data must be exactly product(shape) × itemsize bytes (checked with overflow-safe
// arithmetic before anything is allocated, so a huge declared shape costs nothing). The header
// itself is written and parsed by the NPYFormat module, shared with CIFARLoader.

import NPYFormat

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
        let h: NPYFormat.Header
        do {
            h = try NPYFormat.parseHeader(bytes, maxHeaderBytes: maxHeaderBytes, maxDimensions: maxDimensions)
        } catch .wrongMagic {
            throw bad("not .npy bytes (no \\x93NUMPY magic); Flower clients send np.save output (tensor_type numpy.ndarray)")
        } catch {
            throw bad(error.detail)
        }
        guard let dtype = DType(rawValue: h.descr) else {
            let hint = h.descr.hasPrefix(">") ? "big-endian data is not accepted; send little-endian ('<')" :
                "flwr carries float32 and float64 only; convert with arr.astype(np.float32)"
            throw bad("dtype '\(h.descr.prefix(40))' refused: \(hint)")
        }
        guard let fortranOrder = h.fortranOrder else { throw bad("header has no 'fortran_order'") }
        guard !fortranOrder else { throw bad("array is in Fortran order; send np.ascontiguousarray(arr) instead") }
        let (size, overflow) = h.count.multipliedReportingOverflow(by: dtype.size)
        let present = bytes.count - h.dataOffset
        guard !overflow, size == present else {
            throw bad("shape \(h.shapeText) of \(h.descr) needs \(overflow ? "more than \(Int.max)" : "\(size)") bytes of data, \(present) present\(present < size || overflow ? " (truncated, or a forged shape)" : "")")
        }
        return Header(shape: h.shape, dtype: dtype, dataOffset: h.dataOffset, count: h.count)
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
        var out = NPYFormat.header(descr: DType.float32.rawValue, shape: shape)
        out.reserveCapacity(out.count + values.count * 4)
        out.append(contentsOf: UnsafeRawBufferPointer(values))
        return out
    }
}
