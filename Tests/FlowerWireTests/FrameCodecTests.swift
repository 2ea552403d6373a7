// The pure frame codec: chunked input, limits at their edges, bad headers, compression.
@testable import FlowerWire
@testable import FlowerWireCodec
import FlowerZlib
import FlowerCore
import XCTest

final class FrameCodecTests: XCTestCase {
    /// Three frames back to back: empty, small, and 10,000 bytes (compressed flag on the last).
    func stream() -> (bytes: [UInt8], frames: [Frame]) {
        let frames = [
            Frame(compressed: false, payload: []),
            Frame(compressed: false, payload: [1, 2, 3]),
            Frame(compressed: true, payload: (0 ..< 10_000).map { UInt8(truncatingIfNeeded: $0 * 7) }),
        ]
        let bytes = frames.flatMap { FrameEncoder.frame($0.payload, compressed: $0.compressed) }
        return (bytes, frames)
    }

    func testHeaderLayoutIsFlagsThenBigEndianLength() {
        XCTAssertEqual(FrameEncoder.frame([9, 8], compressed: false), [0, 0, 0, 0, 2, 9, 8])
        XCTAssertEqual(Array(FrameEncoder.frame([UInt8](repeating: 0, count: 0x010203), compressed: true).prefix(5)), [1, 0, 1, 2, 3])
    }

    func testChunksOf1_7_4096AndWholeGiveTheSameFrames() throws {
        let (bytes, expected) = stream()
        for chunk in [1, 7, 4096, bytes.count] {
            var decoder = FrameDecoder(limit: 1 << 20)
            var got: [Frame] = []
            var i = 0
            while i < bytes.count {
                let end = min(i + chunk, bytes.count)
                got += try decoder.feed(Array(bytes[i ..< end]))
                i = end
            }
            XCTAssertEqual(got, expected, "chunk size \(chunk)")
            XCTAssertEqual(decoder.bufferedBytes, 0, "chunk size \(chunk): bytes left over")
        }
    }

    func testNeedsMoreDataUntilTheLastByte() throws {
        let bytes = FrameEncoder.frame([5, 6, 7, 8])
        var decoder = FrameDecoder(limit: 16)
        for b in bytes.dropLast() { XCTAssertEqual(try decoder.feed([b]), []) }
        XCTAssertEqual(decoder.bufferedBytes, 8)
        XCTAssertEqual(decoder.expectedBytes, 9)
        XCTAssertEqual(try decoder.feed([bytes.last ?? 0]), [Frame(compressed: false, payload: [5, 6, 7, 8])])
    }

    func testLimitsAt0_1_LimitAndLimitPlus1() throws {
        for limit in [0, 1, 4096] {
            for length in Set([0, 1, limit, limit + 1]) {
                var decoder = FrameDecoder(limit: limit)
                // Only the header is fed: an oversized frame must be refused before its payload is buffered.
                let header = Array(FrameEncoder.frame([UInt8](repeating: 1, count: length)).prefix(5))
                if length <= limit {
                    let frames = try decoder.feed(header)
                    XCTAssertEqual(frames.count, length == 0 ? 1 : 0, "limit \(limit), length \(length)")
                    if length > 0 { XCTAssertEqual(decoder.expectedBytes, 5 + length) }
                } else {
                    XCTAssertThrowsError(try decoder.feed(header), "limit \(limit), length \(length)") { error in
                        XCTAssertEqual(error as? WireError, .frameTooLarge(length: length, limit: limit))
                    }
                }
            }
        }
    }

    func testMaximumU32LengthIsRefusedBeforeAllocating() {
        var decoder = FrameDecoder(limit: 256 << 20)
        XCTAssertThrowsError(try decoder.feed([0, 0xff, 0xff, 0xff, 0xff])) { error in
            XCTAssertEqual(error as? WireError, .frameTooLarge(length: Int(UInt32.max), limit: 256 << 20))
        }
    }

    func testReservedFlagBitsAreRejected() {
        for flags: UInt8 in [2, 4, 0x80, 0xff, 3] {
            var decoder = FrameDecoder(limit: 100)
            XCTAssertThrowsError(try decoder.feed([flags, 0, 0, 0, 1, 0])) { error in
                XCTAssertEqual(error as? WireError, .reservedFlags(flags))
            }
        }
    }

    func testCompressionIsUsedOnlyWhenItPays() throws {
        let repetitive = [UInt8](repeating: 0, count: FrameHeader.size) + [UInt8](repeating: 42, count: 100_000)
        var packed = repetitive
        try FrameEncoder.finish(&packed, allowCompression: true)
        XCTAssertEqual(packed[0], 1, "a repetitive payload should be compressed")
        XCTAssertLessThan(packed.count, 10_000)
        var decoder = FrameDecoder(limit: 200_000)
        let frames = try decoder.feed(packed)
        XCTAssertEqual(try frames.first?.protobufBytes(limit: 200_000), Array(repetitive.dropFirst(5)))

        var rng = SplitMix64(seed: 3)
        var noise = [UInt8](repeating: 0, count: FrameHeader.size) + (0 ..< 100_000).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let original = noise
        try FrameEncoder.finish(&noise, allowCompression: true)
        XCTAssertEqual(noise[0], 0, "random bytes do not compress: sent as is")
        XCTAssertEqual(Array(noise.dropFirst(5)), Array(original.dropFirst(5)))
    }

    func testCorruptAndBombPayloadsAreRejected() throws {
        let corrupt = Frame(compressed: true, payload: [0x78, 0x9c, 0xff, 0xff, 0x00, 0x01])
        XCTAssertThrowsError(try corrupt.protobufBytes(limit: 1000)) { error in
            guard case .badCompression = error as? WireError else { return XCTFail("got \(error)") }
        }
        let bomb = Frame(compressed: true, payload: try Zlib.compress([UInt8](repeating: 0, count: 1 << 20)))
        XCTAssertLessThan(bomb.payload.count, 10_000, "1 MiB of zeros should deflate to a few KiB")
        XCTAssertThrowsError(try bomb.protobufBytes(limit: 1000)) { error in
            guard case .badCompression(let why) = error as? WireError else { return XCTFail("got \(error)") }
            XCTAssertTrue(why.contains("1000"), why)
        }
        XCTAssertEqual(try bomb.protobufBytes(limit: 1 << 20).count, 1 << 20, "exactly at the limit is fine")
    }

    /// Compressed frames on the decode path inflate into the shared budget: a bomb is refused at
    /// the caller's limit, a frame that finds the budget taken is refused at once with a typed
    /// error, and the budget is whole again afterwards.
    func testDecodingCompressedFramesUsesTheSharedBudget() throws {
        let budget = InflateBudget(capacity: 1 << 20)
        let bomb = Frame(compressed: true, payload: try Zlib.compress([UInt8](repeating: 0, count: 16 << 20), level: 9))
        XCTAssertThrowsError(try WireDecoder.clientMessage(bomb, limit: 64 << 10, budget: budget)) { error in
            guard case .badCompression(let why) = error as? WireError else { return XCTFail("got \(error)") }
            XCTAssertTrue(why.contains("exceeds the limit of 65536 bytes"), why)
        }
        XCTAssertLessThanOrEqual(budget.highWater, 64 << 10, "inflated past the limit the caller passed")
        var packed = try WireEncoder.frame(.goodbye(reason: String(repeating: "bye ", count: 1000)))
        let payload = Array(packed.dropFirst(FrameHeader.size))
        packed = FrameEncoder.frame(try Zlib.compress(payload), compressed: true)
        var decoder = FrameDecoder(limit: 1 << 20)
        let frame = try XCTUnwrap(try decoder.feed(packed).first)
        XCTAssertTrue(budget.reserve(1 << 20))
        XCTAssertThrowsError(try WireDecoder.clientMessage(frame, limit: 1 << 20, budget: budget)) { error in
            guard case .decompressionBudgetExhausted(_, let total) = error as? WireError else { return XCTFail("got \(error)") }
            XCTAssertEqual(total, 1 << 20)
            XCTAssertTrue("\(error)".contains("shared by all connections"), "\(error)")
        }
        budget.release(1 << 20)
        guard case .goodbye(let why) = try WireDecoder.clientMessage(frame, limit: 1 << 20, budget: budget) else { return XCTFail("not Goodbye") }
        XCTAssertEqual(why.count, 4000)
        XCTAssertEqual(budget.inUse, 0, "the reservation is released once the message is decoded")
    }

    /// The read path makes no copy of the payload: `fill` hands the socket the frame's own buffer,
    /// and the finished frame (and, uncompressed, its protobuf bytes) is that same buffer.
    func testFillWritesStraightIntoTheFramePayload() throws {
        let payload = (0 ..< 100_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let wire = FrameEncoder.frame(payload)
        var decoder = FrameDecoder(limit: 1 << 20)
        var offset = 0
        var payloadWrites: Set<UnsafeMutableRawPointer> = []
        var frame: Frame?
        while frame == nil {
            frame = try decoder.fill { dest in
                let n = min(dest.count, 7_000, wire.count - offset)
                wire.withUnsafeBytes { dest.baseAddress!.copyMemory(from: $0.baseAddress! + offset, byteCount: n) }
                if offset >= FrameHeader.size { payloadWrites.insert(dest.baseAddress! - (offset - FrameHeader.size)) }
                offset += n
                return n
            }
        }
        let f = try XCTUnwrap(frame)
        XCTAssertEqual(f.payload, payload)
        XCTAssertEqual(payloadWrites.count, 1, "every read went into one buffer")
        let written = try XCTUnwrap(payloadWrites.first)
        f.payload.withUnsafeBytes { XCTAssertEqual(UnsafeRawPointer($0.baseAddress), UnsafeRawPointer(written), "the frame holds the buffer the reads filled") }
        try f.protobufBytes(limit: 1 << 20).withUnsafeBytes { XCTAssertEqual(UnsafeRawPointer($0.baseAddress), UnsafeRawPointer(written), "no copy for uncompressed frames") }
    }
}
