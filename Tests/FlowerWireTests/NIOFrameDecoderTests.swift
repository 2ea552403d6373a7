// The NIO frame decoder (`FrameToMessageDecoder` in an EmbeddedChannel, as the pipelines run it):
// input in chunks of any size, limits at their edges, bad headers, a frame cut short.
@testable import FlowerWireCodec
import NIOCore
import NIOEmbedded
import Testing

@Suite struct NIOFrameDecoderTests {
    /// Three frames back to back: empty, small, and 10,000 bytes (compressed flag on the last).
    static let frames = [
        Frame(compressed: false, payload: []),
        Frame(compressed: false, payload: [1, 2, 3]),
        Frame(compressed: true, payload: (0 ..< 10_000).map { UInt8(truncatingIfNeeded: $0 * 7) }),
    ]
    static let stream = frames.flatMap { FrameEncoder.frame($0.payload, compressed: $0.compressed) }

    /// Chunks of 1, 7 and 4096 bytes and the whole stream at once (0) give the same frames, and
    /// nothing is left over: closing the channel finds no partial frame.
    @Test(arguments: [1, 7, 4096, 0])
    func chunkedInputGivesTheSameFrames(chunk: Int) throws {
        let bytes = Self.stream
        let step = chunk == 0 ? bytes.count : chunk
        let channel = try embeddedDecoder(limit: 1 << 20)
        var got: [Frame] = []
        var i = 0
        while i < bytes.count {
            let end = min(i + step, bytes.count)
            try channel.writeInbound(channel.allocator.buffer(bytes: bytes[i ..< end]))
            got += try readFrames(channel)
            i = end
        }
        #expect(got == Self.frames)
        #expect(try channel.finish().isClean, "bytes left over after the last frame")
    }

    /// Fed a byte at a time, the frame appears with its last byte; a stream that stops one byte
    /// short ends in `truncatedFrame` saying how much was there and how much was announced.
    @Test func needsMoreDataUntilTheLastByte() throws {
        let bytes = FrameEncoder.frame([5, 6, 7, 8])
        let short = try embeddedDecoder(limit: 16)
        for b in bytes.dropLast() {
            try short.writeInbound(short.allocator.buffer(bytes: [b]))
            #expect(try readFrames(short) == [])
        }
        #expect(throws: WireError.truncatedFrame(received: 8, expected: 9)) { try short.finish() }

        let whole = try embeddedDecoder(limit: 16)
        for b in bytes { try whole.writeInbound(whole.allocator.buffer(bytes: [b])) }
        #expect(try readFrames(whole) == [Frame(compressed: false, payload: [5, 6, 7, 8])])
        #expect(try whole.finish().isClean)
    }

    /// Only the header is fed: an oversized frame is refused before its payload is buffered; one
    /// within the limit waits for its payload (a close then reports it cut short).
    @Test(arguments: [0, 1, 4096])
    func limitsAt0_1_LimitAndLimitPlus1(limit: Int) throws {
        for length in Set([0, 1, limit, limit + 1]) {
            let channel = try embeddedDecoder(limit: limit)
            let header = Array(FrameEncoder.frame([UInt8](repeating: 1, count: length)).prefix(5))
            if length <= limit {
                try channel.writeInbound(channel.allocator.buffer(bytes: header))
                #expect(try readFrames(channel).count == (length == 0 ? 1 : 0), "limit \(limit), length \(length)")
                if length > 0 {
                    #expect(throws: WireError.truncatedFrame(received: 5, expected: 5 + length)) { try channel.finish() }
                }
            } else {
                #expect(throws: WireError.frameTooLarge(length: length, limit: limit), "limit \(limit), length \(length)") {
                    try channel.writeInbound(channel.allocator.buffer(bytes: header))
                }
            }
        }
    }

    @Test func maximumU32LengthIsRefusedBeforeAllocating() throws {
        let channel = try embeddedDecoder(limit: 256 << 20)
        #expect(throws: WireError.frameTooLarge(length: Int(UInt32.max), limit: 256 << 20)) {
            try channel.writeInbound(channel.allocator.buffer(bytes: [0, 0xff, 0xff, 0xff, 0xff]))
        }
    }

    @Test(arguments: [UInt8(2), 4, 0x80, 0xff, 3])
    func reservedFlagBitsAreRejected(flags: UInt8) throws {
        let channel = try embeddedDecoder(limit: 100)
        #expect(throws: WireError.reservedFlags(flags)) {
            try channel.writeInbound(channel.allocator.buffer(bytes: [flags, 0, 0, 0, 1, 0]))
        }
    }

    /// A frame received in 7,000-byte pieces comes out whole, and its protobuf bytes are the
    /// payload slice of the receive buffer itself (uncompressed: no copy before decoding).
    @Test func payloadIsASliceOfTheReceiveBuffer() throws {
        let payload = (0 ..< 100_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let wire = FrameEncoder.frame(payload)
        let channel = try embeddedDecoder(limit: 1 << 20)
        var i = 0
        while i < wire.count {
            let end = min(i + 7_000, wire.count)
            try channel.writeInbound(channel.allocator.buffer(bytes: wire[i ..< end]))
            i = end
        }
        let frame = try #require(try channel.readInbound(as: ReceivedFrame.self))
        #expect(!frame.compressed)
        #expect(Array(frame.payload.readableBytesView) == payload)
        let slice = frame.payload.withUnsafeReadableBytes { UnsafeRawPointer($0.baseAddress) }
        let decoded = try frame.withProtobufBytes(limit: 1 << 20) { UnsafeRawPointer($0.baseAddress) }
        #expect(decoded == slice, "the protobuf bytes were copied out of the receive buffer")
        #expect(try channel.finish().isClean)
    }

    /// Compressed frames pass only once zlib was negotiated on the connection.
    @Test func compressedFramesNeedNegotiatedZlib() throws {
        let policy = FramePolicy(limit: 1 << 20)
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(FrameToMessageDecoder(policy: policy)))
        #expect(throws: WireError.compressionNotNegotiated) {
            try channel.writeInbound(channel.allocator.buffer(bytes: FrameEncoder.frame([1, 2], compressed: true)))
        }
    }
}
