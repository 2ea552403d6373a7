// The frame codec around the decoder: header layout, compression, inflation limits and budget.
// (The decoder itself, chunked input, limits and bad headers: NIOFrameDecoderTests.)
@testable import FlowerWire
@testable import FlowerWireCodec
import FlowerZlib
import FlowerCore
import XCTest

final class FrameCodecTests: XCTestCase {
    func testHeaderLayoutIsFlagsThenBigEndianLength() {
        XCTAssertEqual(FrameEncoder.frame([9, 8], compressed: false), [0, 0, 0, 0, 2, 9, 8])
        XCTAssertEqual(Array(FrameEncoder.frame([UInt8](repeating: 0, count: 0x010203), compressed: true).prefix(5)), [1, 0, 1, 2, 3])
    }

    func testCompressionIsUsedOnlyWhenItPays() throws {
        let repetitive = [UInt8](repeating: 0, count: FrameHeader.size) + [UInt8](repeating: 42, count: 100_000)
        var packed = repetitive
        try FrameEncoder.finish(&packed, allowCompression: true)
        XCTAssertEqual(packed[0], 1, "a repetitive payload should be compressed")
        XCTAssertLessThan(packed.count, 10_000)
        var decoder = EmbeddedFrameReader(limit: 200_000)
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
        var decoder = EmbeddedFrameReader(limit: 1 << 20)
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
}
