// The FlowerWire frame format: the header, frame encoding, and a received frame's protobuf bytes
// (inflated within a budget). No sockets here (proto/README.md, "Frames"); frames are decoded from a
// byte stream by the NIO decoder (NIOFrameCodec.swift).
//
//   flags: u8 (bit 0 = payload is zlib-compressed; bits 1-7 must be 0)
//   length: u32 big-endian (bytes of payload as sent)
//   payload: `length` bytes, one protobuf message
import FlowerZlib
import NIOCore

/// One frame as received: its payload is still packed protobuf (and maybe compressed).
public struct Frame: Sendable, Equatable {
    /// Frame flag bit 0: the payload is a zlib stream.
    public var compressed: Bool
    /// The payload bytes exactly as carried.
    public var payload: [UInt8]

    /// A frame from its parts.
    public init(compressed: Bool, payload: [UInt8]) {
        self.compressed = compressed
        self.payload = payload
    }

    /// The protobuf bytes: the payload itself, or inflated with at most `limit` bytes of output
    /// (a copy; the decoder uses `withProtobufBytes`, which holds the inflation budget while it works).
    public func protobufBytes(limit: Int, budget: InflateBudget = .frames) throws -> [UInt8] {
        guard compressed else { return payload }
        return try withProtobufBytes(limit: limit, budget: budget) { Array($0) }
    }

    /// Calls `body` with the protobuf bytes. A compressed payload is inflated into at most
    /// `limit` bytes (the frame limit of the connection's state: pass the small pre-session
    /// limit before a session, the negotiated one after), reserved from `budget`, the byte
    /// budget all connections' inflations share, for as long as `body` runs. A frame that cannot
    /// get its room is refused (`decompressionBudgetExhausted`), never buffered or waited for.
    public func withProtobufBytes<R>(limit: Int, budget: InflateBudget = .frames,
                                     _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        guard compressed else { return try payload.withUnsafeBytes(body) }
        let inflated: BudgetedBytes
        do {
            inflated = try Zlib.decompress(payload, format: .zlib, limit: limit, budget: budget)
        } catch ZlibError.budgetExhausted(let needed, let capacity) {
            throw WireError.decompressionBudgetExhausted(needed: needed, budget: capacity)
        } catch let error as ZlibError {
            throw WireError.badCompression(error.description)
        }
        defer { inflated.release() }
        return try inflated.bytes.withUnsafeBytes(body)
    }
}

/// Frame header encoding and parsing.
public enum FrameHeader {
    /// Header size in bytes: flags (1) + length (4).
    public static let size = 5
    /// Flag bit 0: payload is zlib-compressed.
    public static let compressedFlag: UInt8 = 1
    /// The largest length a u32 header can carry.
    public static let maxLength = Int(UInt32.max)

    /// Writes a header for a payload of `length` bytes into `out[0..<5]`.
    public static func write(compressed: Bool, length: Int, into out: UnsafeMutableRawBufferPointer) {
        precondition(out.count >= size && length >= 0 && length <= maxLength, "FrameHeader.write: bad arguments")
        out[0] = compressed ? compressedFlag : 0
        out[1] = UInt8(truncatingIfNeeded: length >> 24)
        out[2] = UInt8(truncatingIfNeeded: length >> 16)
        out[3] = UInt8(truncatingIfNeeded: length >> 8)
        out[4] = UInt8(truncatingIfNeeded: length)
    }

    /// Parses a 5-byte header, checking reserved flags and the size limit before anything is allocated.
    public static func parse(_ bytes: UnsafeRawBufferPointer, limit: Int) throws -> (compressed: Bool, length: Int) {
        precondition(bytes.count >= size, "FrameHeader.parse needs 5 bytes")
        let flags = bytes[0]
        guard flags & ~compressedFlag == 0 else { throw WireError.reservedFlags(flags) }
        let length = Int(bytes[1]) << 24 | Int(bytes[2]) << 16 | Int(bytes[3]) << 8 | Int(bytes[4])
        guard length <= limit else { throw WireError.frameTooLarge(length: length, limit: limit) }
        return (flags & compressedFlag != 0, length)
    }
}

/// Frame encoding: the header in front of a payload, compressing when it pays.
public enum FrameEncoder {
    /// Payloads under this size are never compressed.
    public static let compressionThreshold = 4096
    /// Compression is used only when the sample shrinks below this fraction.
    public static let worthwhileRatio = 0.9

    /// Builds a frame from `packed` (which starts with `FrameHeader.size` reserved bytes followed by
    /// the payload) in place, compressing when `allowCompression` and a 64 KiB sample says it pays.
    public static func finish(_ packed: inout [UInt8], allowCompression: Bool) throws {
        let length = packed.count - FrameHeader.size
        precondition(length >= 0, "packed buffer lacks the header space")
        if allowCompression && length >= compressionThreshold {
            let compressed = try packed.withUnsafeBytes { try compressIfWorthwhile(UnsafeRawBufferPointer(rebasing: $0[FrameHeader.size...])) }
            if let compressed {
                var out = [UInt8](repeating: 0, count: FrameHeader.size)
                out.withUnsafeMutableBytes { FrameHeader.write(compressed: true, length: compressed.count, into: $0) }
                out.append(contentsOf: compressed)
                packed = out
                return
            }
        }
        guard length <= FrameHeader.maxLength else {
            throw WireError.cannotEncode("payload of \(length) bytes exceeds the 4 GiB frame format")
        }
        packed.withUnsafeMutableBytes { FrameHeader.write(compressed: false, length: length, into: $0) }
    }

    /// `finish` for a `ByteBuffer` holding header space + payload: writes the header in place, or
    /// replaces `packed` with a new buffer holding the compressed payload when that pays. `packed`
    /// is taken `inout` so that, held only by the caller, it is written without a copy-on-write of
    /// the whole frame.
    public static func finish(_ packed: inout ByteBuffer, allowCompression: Bool, allocator: ByteBufferAllocator) throws {
        let length = packed.readableBytes - FrameHeader.size
        precondition(length >= 0, "packed buffer lacks the header space")
        if allowCompression && length >= compressionThreshold {
            let compressed = try packed.withUnsafeReadableBytes { try compressIfWorthwhile(UnsafeRawBufferPointer(rebasing: $0[FrameHeader.size...])) }
            if let compressed {
                var out = allocator.buffer(capacity: FrameHeader.size + compressed.count)
                out.writeWithUnsafeMutableBytes(minimumWritableBytes: FrameHeader.size) { raw in
                    FrameHeader.write(compressed: true, length: compressed.count, into: raw)
                    return FrameHeader.size
                }
                out.writeBytes(compressed)
                packed = out
                return
            }
        }
        guard length <= FrameHeader.maxLength else {
            throw WireError.cannotEncode("payload of \(length) bytes exceeds the 4 GiB frame format")
        }
        let start = packed.readerIndex
        packed.withUnsafeMutableReadableBytes { raw in
            FrameHeader.write(compressed: false, length: length, into: UnsafeMutableRawBufferPointer(rebasing: raw[0 ..< FrameHeader.size]))
        }
        precondition(packed.readerIndex == start)
    }

    /// The zlib stream of `body` when a 64 KiB sample and then the whole say it pays, else nil.
    static func compressIfWorthwhile(_ body: UnsafeRawBufferPointer) throws -> [UInt8]? {
        let sample = UnsafeRawBufferPointer(rebasing: body[..<min(body.count, 64 << 10)])
        let sampled = try Zlib.compress(sample, level: 1)
        guard Double(sampled.count) < Double(sample.count) * worthwhileRatio else { return nil }
        let whole = try Zlib.compress(body, level: 1)
        guard Double(whole.count) < Double(body.count) * worthwhileRatio else { return nil }
        guard whole.count <= FrameHeader.maxLength else {
            throw WireError.cannotEncode("compressed payload of \(whole.count) bytes exceeds the 4 GiB frame format")
        }
        return whole
    }

    /// A frame around `payload` (copies it; for tests and tools).
    public static func frame(_ payload: [UInt8], compressed: Bool = false) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: FrameHeader.size)
        out.withUnsafeMutableBytes { FrameHeader.write(compressed: compressed, length: payload.count, into: $0) }
        out.append(contentsOf: payload)
        return out
    }
}
