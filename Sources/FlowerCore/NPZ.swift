/// numpy's `.npz` format for a model: a ZIP archive (stored, no compression) holding one
/// `.npy` file per tensor, named by parameter (`conv1.weight.npy`), float32 little-endian,
/// C order. `numpy.load("model.npz")["conv1.weight"]` returns the tensor with its shape.
public enum NPZ {
    /// Problems encoding an archive.
    public enum Error: Swift.Error, Sendable, Equatable, CustomStringConvertible {
        /// The archive would pass ZIP's 4 GiB / 65,535-entry limits (ZIP64 is not written).
        case tooLarge(String)

        public var description: String {
            switch self {
            case .tooLarge(let s): return "model too large for a plain .npz: \(s); save fewer or smaller tensors"
            }
        }
    }

    /// The `.npy` (format 1.0) bytes of one float32 tensor.
    public static func npy(shape: [Int], values: ArraySlice<Float>) -> [UInt8] {
        let dims = shape.map(String.init)
        let tuple = dims.count == 1 ? "(\(dims[0]),)" : "(" + dims.joined(separator: ", ") + ")"
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': \(tuple), }"
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var out: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0]
        append(UInt16(header.utf8.count), to: &out)
        out += header.utf8
        out.reserveCapacity(out.count + 4 * values.count)
        for v in values { append(v.bitPattern, to: &out) }
        return out
    }

    /// The `.npz` archive of `parameters`, tensors in layout order.
    public static func encode(_ parameters: Parameters) throws(Error) -> [UInt8] {
        guard parameters.layout.count < 0xFFFF else { throw .tooLarge("\(parameters.layout.count) tensors") }
        var out: [UInt8] = []
        var central: [UInt8] = []
        for spec in parameters.layout {
            let name = Array((spec.name + ".npy").utf8)
            let data = npy(shape: spec.shape, values: parameters.values[spec.offset ..< spec.offset + spec.count])
            guard data.count < Int(UInt32.max), out.count < Int(UInt32.max), name.count < 0xFFFF else {
                throw .tooLarge("tensor \(spec.name) ends past 4 GiB")
            }
            let crc = CRC32.checksum(data)
            let offset = UInt32(out.count)
            // Local file header: version 2.0, no flags, stored, DOS date 1980-01-01 00:00.
            append(UInt32(0x0403_4B50), to: &out)
            for v: UInt16 in [20, 0, 0, 0, 0x21] { append(v, to: &out) }
            append(crc, to: &out)
            append(UInt32(data.count), to: &out)
            append(UInt32(data.count), to: &out)
            append(UInt16(name.count), to: &out)
            append(UInt16(0), to: &out)
            out += name
            out += data
            // Central directory entry.
            append(UInt32(0x0201_4B50), to: &central)
            for v: UInt16 in [20, 20, 0, 0, 0, 0x21] { append(v, to: &central) }
            append(crc, to: &central)
            append(UInt32(data.count), to: &central)
            append(UInt32(data.count), to: &central)
            append(UInt16(name.count), to: &central)
            for v: UInt16 in [0, 0, 0, 0] { append(v, to: &central) }  // extra, comment, disk, internal attrs
            append(UInt32(0), to: &central)  // external attributes
            append(offset, to: &central)
            central += name
        }
        guard out.count + central.count < Int(UInt32.max) else { throw .tooLarge("archive past 4 GiB") }
        let centralOffset = UInt32(out.count)
        out += central
        append(UInt32(0x0605_4B50), to: &out)  // end of central directory
        append(UInt16(0), to: &out)
        append(UInt16(0), to: &out)
        append(UInt16(parameters.layout.count), to: &out)
        append(UInt16(parameters.layout.count), to: &out)
        append(UInt32(central.count), to: &out)
        append(centralOffset, to: &out)
        append(UInt16(0), to: &out)
        return out
    }

    /// Writes `parameters` as `.npz` to `path`, atomically.
    public static func write(_ parameters: Parameters, to path: String) throws(FileError) {
        let bytes: [UInt8]
        do throws(Error) { bytes = try encode(parameters) } catch {
            throw FileError.write(path: path, detail: error.description)
        }
        try AtomicFile.write(bytes, to: path)
    }

    private static func append<T: FixedWidthInteger>(_ x: T, to out: inout [UInt8]) {
        withUnsafeBytes(of: x.littleEndian) { out += $0 }
    }
}

/// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), as ZIP requires.
enum CRC32 {
    static let table: [UInt32] = (0 ..< 256).map { n in
        var c = UInt32(n)
        for _ in 0 ..< 8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    /// The checksum of `bytes`.
    static func checksum(_ bytes: [UInt8]) -> UInt32 {
        table.withUnsafeBufferPointer { t in
            bytes.withUnsafeBufferPointer { b in
                var c: UInt32 = 0xFFFF_FFFF
                for x in b { c = t[Int((c ^ UInt32(x)) & 0xFF)] ^ (c >> 8) }
                return c ^ 0xFFFF_FFFF
            }
        }
    }
}
