import CZlib
import Synchronization

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
    /// The shared `InflateBudget` had no room for `needed` more bytes of output.
    case budgetExhausted(needed: Int, capacity: Int)

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
        case .budgetExhausted(let needed, let capacity):
            return "no room for \(needed) more bytes of decompressed output in the \(capacity)-byte budget shared by all decompressions in flight; retry later or send it uncompressed"
        }
    }
}

/// A byte budget shared by every decompression of untrusted input in flight (e.g. all of a
/// server's connections): output buffers are reserved from it before they grow, and a
/// decompression that cannot get room fails at once with `ZlibError.budgetExhausted` instead of
/// waiting or buffering. So N zlib bombs arriving together cost at most `capacity` bytes, not N
/// times the frame limit.
public final class InflateBudget: Sendable {
    private struct State {
        var capacity: Int
        var used = 0
        var highWater = 0
    }
    private let state: Mutex<State>

    /// A budget of `capacity` bytes.
    public init(capacity: Int) {
        state = Mutex(State(capacity: max(0, capacity)))
    }

    /// The budget FlowerWire frames share: 256 MiB (the default frame limit), raised to the
    /// largest limit any decompression asked for, so one frame at the limit always fits alone.
    public static let frames = InflateBudget(capacity: 256 << 20)

    /// Bytes that may be reserved at once.
    public var capacity: Int { state.withLock { $0.capacity } }
    /// Bytes reserved now.
    public var inUse: Int { state.withLock { $0.used } }
    /// The most bytes ever reserved at once.
    public var highWater: Int { state.withLock { $0.highWater } }

    /// Sets the capacity (existing reservations stay).
    public func setCapacity(_ bytes: Int) { state.withLock { $0.capacity = max(0, bytes) } }

    /// Raises the capacity to at least `bytes`.
    public func raiseCapacity(toAtLeast bytes: Int) { state.withLock { $0.capacity = max($0.capacity, bytes) } }

    /// Reserves `bytes` if they fit; false (nothing reserved) otherwise.
    public func reserve(_ bytes: Int) -> Bool {
        state.withLock { s in
            guard bytes >= 0, bytes <= s.capacity - s.used else { return false }
            s.used += bytes
            s.highWater = max(s.highWater, s.used)
            return true
        }
    }

    /// Returns `bytes` reserved earlier.
    public func release(_ bytes: Int) {
        state.withLock { $0.used = max(0, $0.used - bytes) }
    }

    /// Resets the high-water mark to what is in use now (for measurements).
    public func resetHighWater() { state.withLock { $0.highWater = $0.used } }
}

/// Decompressed bytes whose buffer is charged to an `InflateBudget` until `release()` (or deinit).
public final class BudgetedBytes: @unchecked Sendable {
    /// The decompressed bytes.
    public let bytes: [UInt8]
    private let budget: InflateBudget?
    private let reserved: Mutex<Int>

    init(bytes: [UInt8], budget: InflateBudget?, reserved: Int) {
        self.bytes = bytes
        self.budget = budget
        self.reserved = Mutex(reserved)
    }

    /// Gives the reservation back now (idempotent).
    public func release() {
        let n = reserved.withLock { r in defer { r = 0 }; return r }
        if n > 0 { budget?.release(n) }
    }

    deinit { release() }
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
        var reserved = 0
        return try decompress(input, format: format, limit: limit, expectedSize: expectedSize, budget: nil, reserved: &reserved)
    }

    /// Decompresses untrusted `input` into at most `limit` bytes whose buffer is reserved from
    /// `budget` before it grows (raising the budget's capacity to `limit` first, so one output at
    /// the limit always fits alone). Fails with `budgetExhausted` when other reservations leave
    /// no room, `tooLarge` past the limit. The reservation lasts as long as the returned object.
    public static func decompress(_ input: UnsafeRawBufferPointer, format: ZlibFormat = .auto,
                                  limit: Int, budget: InflateBudget) throws -> BudgetedBytes {
        budget.raiseCapacity(toAtLeast: limit)
        var reserved = 0
        do {
            let bytes = try decompress(input, format: format, limit: limit, expectedSize: nil, budget: budget, reserved: &reserved)
            return BudgetedBytes(bytes: bytes, budget: budget, reserved: reserved)
        } catch {
            budget.release(reserved)
            throw error
        }
    }

    /// Byte-array form of the budgeted `decompress`.
    public static func decompress(_ input: [UInt8], format: ZlibFormat = .auto, limit: Int,
                                  budget: InflateBudget) throws -> BudgetedBytes {
        try input.withUnsafeBytes { try decompress($0, format: format, limit: limit, budget: budget) }
    }

    private static func decompress(_ input: UnsafeRawBufferPointer, format: ZlibFormat, limit: Int, expectedSize: Int?,
                                   budget: InflateBudget?, reserved: inout Int) throws -> [UInt8] {
        func grow(to bytes: Int) throws {
            guard let budget, bytes > reserved else { return }
            guard budget.reserve(bytes - reserved) else {
                throw ZlibError.budgetExhausted(needed: bytes - reserved, capacity: budget.capacity)
            }
            reserved = bytes
        }
        var stream = z_stream()
        let initCode = flwr_inflateInit2(&stream, format.windowBits)
        guard initCode == Z_OK else { throw ZlibError.library(code: initCode, message: "inflateInit2 failed") }
        defer { inflateEnd(&stream) }

        var capacity = min(limit, max(expectedSize ?? input.count * 4, 1024))
        try grow(to: capacity)
        var out = Self.buffer(capacity, keeping: [], 0)
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
                try grow(to: capacity)
                out = Self.buffer(capacity, keeping: out, written)
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

    /// A `count`-byte output buffer starting with the first `kept` bytes of `old`. The rest is
    /// left uninitialised (inflate writes it; only written bytes are ever returned): zero-filling
    /// it cost more than inflating a bomb of zeros.
    private static func buffer(_ count: Int, keeping old: [UInt8], _ kept: Int) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: count) { buf, n in
            if kept > 0, let dst = buf.baseAddress {
                old.withUnsafeBufferPointer { src in
                    if let s = src.baseAddress { dst.update(from: s, count: kept) }
                }
            }
            n = count
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
