// TFRecord framing (TensorFlow's record_writer.cc), the container of TensorBoard event files:
//
//   uint64 length (little-endian) | uint32 masked_crc32c(length bytes) | data | uint32 masked_crc32c(data)
//
// with CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) masked as
// ((crc >> 15) | (crc << 17)) + 0xa282ead8, so a CRC of data holding CRCs stays well distributed.

/// CRC-32C (Castagnoli) as TFRecord uses it.
public enum CRC32C {
    static let table: [UInt32] = (0 ..< 256).map { i -> UInt32 in
        var c = UInt32(i)
        for _ in 0 ..< 8 { c = c & 1 != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
        return c
    }

    /// The CRC-32C of `bytes` (check value of "123456789": 0xE3069283).
    public static func checksum<C: Collection>(_ bytes: C) -> UInt32 where C.Element == UInt8 {
        var crc: UInt32 = 0xFFFF_FFFF
        for b in bytes { crc = table[Int((crc ^ UInt32(b)) & 0xFF)] ^ (crc >> 8) }
        return crc ^ 0xFFFF_FFFF
    }

    /// The masked form TFRecord stores.
    public static func masked<C: Collection>(_ bytes: C) -> UInt32 where C.Element == UInt8 {
        let crc = checksum(bytes)
        return ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8
    }
}

/// Builds and parses TFRecord frames.
public enum TFRecord {
    /// `data` framed as one record.
    public static func frame(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(data.count + 16)
        let length = withUnsafeBytes(of: UInt64(data.count).littleEndian, Array.init)
        out += length
        out += withUnsafeBytes(of: CRC32C.masked(length).littleEndian, Array.init)
        out += data
        out += withUnsafeBytes(of: CRC32C.masked(data).littleEndian, Array.init)
        return out
    }

    /// Why bytes are not a sequence of valid records.
    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case truncated(offset: Int)
        case badLengthCRC(offset: Int)
        case badDataCRC(offset: Int)
        case tooLong(offset: Int, length: UInt64)

        public var description: String {
            switch self {
            case .truncated(let o): return "TFRecord truncated at byte \(o)"
            case .badLengthCRC(let o): return "TFRecord length checksum mismatch at byte \(o)"
            case .badDataCRC(let o): return "TFRecord data checksum mismatch at byte \(o)"
            case .tooLong(let o, let n): return "TFRecord at byte \(o) claims \(n) bytes, more than the file holds"
            }
        }
    }

    /// The payloads of every record in `bytes`, checksums verified.
    public static func records(_ bytes: [UInt8]) throws(ParseError) -> [[UInt8]] {
        var out: [[UInt8]] = []
        var i = 0
        func u32(_ at: Int) -> UInt32 { (0 ..< 4).reduce(UInt32(0)) { $0 | UInt32(bytes[at + $1]) << (8 * UInt32($1)) } }
        while i < bytes.count {
            guard bytes.count - i >= 12 else { throw .truncated(offset: i) }
            let length = (0 ..< 8).reduce(UInt64(0)) { $0 | UInt64(bytes[i + $1]) << (8 * UInt64($1)) }
            guard u32(i + 8) == CRC32C.masked(bytes[i ..< i + 8]) else { throw .badLengthCRC(offset: i) }
            guard length <= UInt64(bytes.count - i - 12), Int(length) <= bytes.count - i - 16 else {
                throw .tooLong(offset: i, length: length)
            }
            let start = i + 12, end = start + Int(length)
            let data = Array(bytes[start ..< end])
            guard u32(end) == CRC32C.masked(data) else { throw .badDataCRC(offset: i) }
            out.append(data)
            i = end + 4
        }
        return out
    }
}
