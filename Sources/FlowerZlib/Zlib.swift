import CZlib

/// A zlib failure, with what went wrong and what to do about it.
public enum ZlibError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The input is not a valid zlib/gzip stream (bad header, bad checksum, bad block).
    case corrupt(String)
    /// The input ended before the end of the compressed stream.
    case truncated
    /// Inflating would produce more than `limit` bytes (e.g. a zlib bomb).
    case tooLarge(limit: Int)
    /// zlib itself failed (out of memory, version mismatch).
    case library(code: Int32, message: String)

    public var description: String {
        switch self {
        case .corrupt(let why):
            return "corrupt compressed data (\(why)); the file or message is damaged: re-download or re-send it"
        case .truncated:
            return "compressed data ends early: the file or message was cut short; re-download or re-send it"
        case .tooLarge(let limit):
            return "decompressed data exceeds the limit of \(limit) bytes; raise the limit only if the input is trusted"
        case .library(let code, let message):
            return "zlib error \(code): \(message)"
        }
    }
}

/// The container around a deflate stream.
public enum ZlibFormat: Sendable {
    /// RFC 1950 (2-byte header, Adler-32 trailer): what FlowerWire frames carry.
    case zlib
    /// RFC 1952 (.gz files); concatenated members are read one after the other.
    case gzip
    /// Raw deflate (RFC 1951), as inside zip files.
    case raw
    /// Detect zlib or gzip from the header (decompression only).
    case auto

    var windowBits: Int32 {
        switch self {
        case .zlib: return 15
        case .gzip: return 15 + 16
        case .raw: return -15
        case .auto: return 15 + 32
        }
    }
}

/// Whole-buffer compression and decompression through zlib.
public enum Zlib {
    /// Compresses `input` (level 0...9; 1 is fastest) into a new byte array.
    public static func compress(_ input: UnsafeRawBufferPointer, level: Int32 = 1,
                                format: ZlibFormat = .zlib) throws -> [UInt8] {
        precondition(format != .auto, "compress needs a concrete format")
        var stream = z_stream()
        let initCode = flwr_deflateInit2(&stream, level, format.windowBits)
        guard initCode == Z_OK else { throw ZlibError.library(code: initCode, message: "deflateInit2 failed") }
        defer { deflateEnd(&stream) }
        let bound = Int(deflateBound(&stream, uLong(input.count)))
        var out = [UInt8](repeating: 0, count: bound)
        let produced: Int = out.withUnsafeMutableBytes { outBuf in
            stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self))
            stream.avail_in = uInt(input.count)
            stream.next_out = outBuf.baseAddress?.assumingMemoryBound(to: Bytef.self)
            stream.avail_out = uInt(outBuf.count)
            let code = deflate(&stream, Z_FINISH)
            return code == Z_STREAM_END ? Int(stream.total_out) : -Int(code)
        }
        guard produced >= 0 else {
            throw ZlibError.library(code: Int32(-produced), message: "deflate did not finish within deflateBound")
        }
        out.removeSubrange(produced...)
        return out
    }

    /// Compresses a byte array.
    public static func compress(_ input: [UInt8], level: Int32 = 1,
                                format: ZlibFormat = .zlib) throws -> [UInt8] {
        try input.withUnsafeBytes { buf in
            try compress(buf, level: level, format: format)
        }
    }

    /// Decompresses `input`, refusing to produce more than `limit` bytes.
    ///
    /// `expectedSize`, when known (e.g. from a header), sizes the output once.
    public static func decompress(_ input: UnsafeRawBufferPointer, format: ZlibFormat = .auto,
                                  limit: Int = Int.max, expectedSize: Int? = nil) throws -> [UInt8] {
        var stream = z_stream()
        let initCode = flwr_inflateInit2(&stream, format.windowBits)
        guard initCode == Z_OK else { throw ZlibError.library(code: initCode, message: "inflateInit2 failed") }
        defer { inflateEnd(&stream) }

        var capacity = min(limit, max(expectedSize ?? input.count * 4, 1024))
        var out = [UInt8](repeating: 0, count: capacity)
        var written = 0
        stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self))
        stream.avail_in = uInt(input.count)

        while true {
            if written == capacity {
                guard capacity < limit else {
                    // Full at the limit: one more byte of output would exceed it.
                    if try inflateWouldProduceMore(&stream) { throw ZlibError.tooLarge(limit: limit) }
                    break
                }
                capacity = min(limit, capacity &* 2)
                out.append(contentsOf: repeatElement(0, count: capacity - out.count))
            }
            let code: Int32 = out.withUnsafeMutableBytes { outBuf in
                stream.next_out = outBuf.baseAddress!.advanced(by: written).assumingMemoryBound(to: Bytef.self)
                stream.avail_out = uInt(capacity - written)
                let before = stream.avail_out
                let code = inflate(&stream, Z_NO_FLUSH)
                written += Int(before - stream.avail_out)
                return code
            }
            switch code {
            case Z_STREAM_END:
                // gzip files may hold several members one after the other.
                if format != .zlib && format != .raw && stream.avail_in > 0 {
                    guard inflateReset(&stream) == Z_OK else { throw ZlibError.library(code: code, message: "inflateReset failed") }
                    continue
                }
                out.removeSubrange(written...)
                return out
            case Z_OK:
                continue
            case Z_BUF_ERROR:
                // No progress possible: either output is full (loop grows it) or input ran out.
                if written == capacity { continue }
                throw ZlibError.truncated
            case Z_DATA_ERROR, Z_NEED_DICT:
                throw ZlibError.corrupt(stream.msg.map { String(cString: $0) } ?? "invalid deflate data")
            case Z_MEM_ERROR:
                throw ZlibError.library(code: code, message: "out of memory")
            default:
                throw ZlibError.library(code: code, message: stream.msg.map { String(cString: $0) } ?? "inflate failed")
            }
        }
        out.removeSubrange(written...)
        return out
    }

    /// Decompresses a byte array.
    public static func decompress(_ input: [UInt8], format: ZlibFormat = .auto,
                                  limit: Int = Int.max, expectedSize: Int? = nil) throws -> [UInt8] {
        try input.withUnsafeBytes { buf in
            try decompress(buf, format: format, limit: limit, expectedSize: expectedSize)
        }
    }

    /// Called with the output full at the limit: inflates into a one-byte scratch buffer until the
    /// stream either yields a byte (true: the output would exceed the limit) or ends (false).
    private static func inflateWouldProduceMore(_ stream: inout z_stream) throws -> Bool {
        var scratch: UInt8 = 0
        while true {
            let code = withUnsafeMutablePointer(to: &scratch) { ptr -> Int32 in
                stream.next_out = ptr
                stream.avail_out = 1
                return inflate(&stream, Z_NO_FLUSH)
            }
            if stream.avail_out == 0 { return true }
            switch code {
            case Z_STREAM_END: return false
            case Z_OK: continue
            case Z_BUF_ERROR: throw ZlibError.truncated
            case Z_DATA_ERROR, Z_NEED_DICT: throw ZlibError.corrupt(stream.msg.map { String(cString: $0) } ?? "invalid deflate data")
            default: throw ZlibError.library(code: code, message: "inflate failed")
            }
        }
    }

    /// CRC-32 (as used by gzip and zip) of `bytes`, continuing from `crc`.
    public static func crc32(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return crc }
        var result = uLong(crc)
        var offset = 0
        while offset < bytes.count {  // uInt is 32-bit: feed at most 1 GiB at a time
            let chunk = min(bytes.count - offset, 1 << 30)
            result = CZlib.crc32(result, base.advanced(by: offset).assumingMemoryBound(to: Bytef.self), uInt(chunk))
            offset += chunk
        }
        return UInt32(truncatingIfNeeded: result)
    }
}
