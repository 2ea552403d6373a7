// UpdateCompression.swift: fp16 against hand-computed binary16 bit patterns, int8 and int4
// (hand-packed nibbles) stochastic rounding against the true mean over many draws, and hostile encodings refused before use.
import FlowerBase
import FlowerCore
@testable import FlowerWireCodec
import XCTest

final class UpdateCompressionTests: XCTestCase {
    private func bits(_ bytes: [UInt8]) -> [UInt16] {
        stride(from: 0, to: bytes.count, by: 2).map { UInt16(bytes[$0]) | UInt16(bytes[$0 + 1]) << 8 }
    }

    func testFP16KnownValuesRoundToNearestEven() throws {
        // 1 + 2^-11 lies halfway between 0x3C00 and 0x3C01: ties go to the even 0x3C00;
        // 1 + 3·2^-11 lies halfway between 0x3C01 and 0x3C02: ties go to 0x3C02.
        let xs: [Float] = [1, -2, 0.1, 65504, 1 + 0x1p-11, 1 + 3 * 0x1p-11, 0x1p-24, 0]
        let enc = try UpdateCodec.encodeFP16(xs[...])
        XCTAssertEqual(enc.count, 16)
        XCTAssertEqual(bits(enc), [0x3C00, 0xC000, 0x2E66, 0x7BFF, 0x3C00, 0x3C02, 0x0001, 0x0000])
        XCTAssertEqual(Array(enc[0 ..< 4]), [0x00, 0x3C, 0x00, 0xC0], "little-endian on the wire")
        let dec = try UpdateCodec.decodeFP16(CompressedTensor(count: xs.count, scale: 0, data: enc), expected: xs.count, name: "t")
        // 0x2E66 = (1 + 614/1024) · 2^-4 = 0.0999755859375.
        XCTAssertEqual(dec, [1, -2, 0.0999755859375, 65504, 1, 1 + 0x1p-9, 0x1p-24, 0])
    }

    func testFP16OverflowIsRefusedOnEncode() {
        XCTAssertThrowsError(try UpdateCodec.encodeFP16([1, 65520][...], name: "fc.weight")) { e in
            XCTAssertTrue("\(e)".contains("fc.weight") && "\(e)".contains("fp16"), "\(e)")
        }
        XCTAssertThrowsError(try UpdateCodec.encodeFP16([Float.nan][...]))
    }

    func testInt8ScaleAndExactValues() throws {
        var rng = SplitMix64(seed: 7)
        let t = try UpdateCodec.encodeInt8([127, -127, 0, 63.5][...], rng: &rng)
        XCTAssertEqual(t.scale, 1, "max |x| / 127")
        XCTAssertEqual(t.count, 4)
        XCTAssertEqual(Array(t.data[0 ..< 3]), [127, 0x81, 0])
        XCTAssertTrue(t.data[3] == 63 || t.data[3] == 64, "63.5 rounds to a neighbour, got \(t.data[3])")
        let zero = try UpdateCodec.encodeInt8([0, 0][...], rng: &rng)
        XCTAssertEqual(zero, CompressedTensor(count: 2, scale: 0, data: [0, 0]))
        XCTAssertEqual(try UpdateCodec.decodeInt8(zero, expected: 2, name: "z"), [0, 0])
    }

    func testInt8StochasticRoundingIsUnbiased() throws {
        // scale = 1 exactly; 38.1 and -63.5 and 0.2 fall between integers. Round-to-nearest or
        // truncation would be off by 0.1 or more; the stochastic mean must be within 0.02
        // (over 8 standard errors of the mean for 20,000 draws).
        let xs: [Float] = [127, 38.1, -63.5, 0.2]
        var rng = SplitMix64(seed: 42)
        var sums = [Double](repeating: 0, count: xs.count)
        let draws = 20_000
        for _ in 0 ..< draws {
            let t = try UpdateCodec.encodeInt8(xs[...], rng: &rng)
            let d = try UpdateCodec.decodeInt8(t, expected: xs.count, name: "t")
            for i in 0 ..< xs.count {
                XCTAssertLessThanOrEqual(abs(d[i] - xs[i]), 1, "within one step")
                sums[i] += Double(d[i])
            }
        }
        for i in 0 ..< xs.count {
            XCTAssertEqual(sums[i] / Double(draws), Double(xs[i]), accuracy: 0.02, "element \(i)")
        }
    }

    func testHostileInt8Refused() {
        let good = CompressedTensor(count: 2, scale: 0.5, data: [1, 2])
        XCTAssertEqual(try UpdateCodec.decodeInt8(good, expected: 2, name: "w"), [0.5, 1])
        for scale in [Float.nan, .infinity, -1] {
            XCTAssertThrowsError(try UpdateCodec.decodeInt8(CompressedTensor(count: 2, scale: scale, data: [1, 2]), expected: 2, name: "w")) { e in
                XCTAssertTrue("\(e)".contains("scale"), "\(e)")
            }
        }
        XCTAssertThrowsError(try UpdateCodec.decodeInt8(CompressedTensor(count: 3, scale: 1, data: [1, 2, 3]), expected: 2, name: "w")) { e in
            XCTAssertTrue("\(e)".contains("declares 3 elements"), "\(e)")
        }
        XCTAssertThrowsError(try UpdateCodec.decodeInt8(CompressedTensor(count: 2, scale: 1, data: [1]), expected: 2, name: "w"))
        XCTAssertThrowsError(try UpdateCodec.decodeInt8(CompressedTensor(count: 2, scale: 1, data: [1, 0x80]), expected: 2, name: "w"))
    }

    func testHostileFP16Refused() {
        XCTAssertThrowsError(try UpdateCodec.decodeFP16(CompressedTensor(count: 2, scale: 0, data: [0, 0x3C, 0]), expected: 2, name: "w"))
        XCTAssertThrowsError(try UpdateCodec.decodeFP16(CompressedTensor(count: 1, scale: 0, data: [0, 0x3C]), expected: 2, name: "w"))
        XCTAssertThrowsError(try UpdateCodec.decodeFP16(CompressedTensor(count: 1, scale: 0, data: [0, 0x7C]), expected: 1, name: "w"), "infinity")
        XCTAssertThrowsError(try UpdateCodec.decodeFP16(CompressedTensor(count: 1, scale: 0, data: [0, 0x7E]), expected: 1, name: "w"), "NaN")
        XCTAssertThrowsError(try UpdateCodec.decodeFP16(CompressedTensor(count: 1, scale: 2, data: [0, 0x3C]), expected: 1, name: "w"), "scale")
    }

    func testInt4PacksTwoNibblesPerByte() throws {
        // max |x| = 7: scale 1, integers encode exactly (no rounding draw moves them).
        // Nibbles: 7 = 0x7, -7 = 0x9, 0, -1 = 0xF, 3, 1; element 2i low, 2i + 1 high.
        var rng = SplitMix64(seed: 3)
        let even = try UpdateCodec.encodeInt4([7, -7, 0, -1, 3, 1][...], rng: &rng)
        XCTAssertEqual(even, CompressedTensor(count: 6, scale: 1, data: [0x97, 0xF0, 0x13]))
        XCTAssertEqual(try UpdateCodec.decodeInt4(even, expected: 6, name: "t"), [7, -7, 0, -1, 3, 1])
        // Odd count: the last high nibble is padding 0. Scale max |x| / 7 = 0.5.
        let odd = try UpdateCodec.encodeInt4([-1, 3.5, 1.5][...], rng: &rng)
        XCTAssertEqual(odd, CompressedTensor(count: 3, scale: 0.5, data: [0x7E, 0x03]))
        XCTAssertEqual(try UpdateCodec.decodeInt4(odd, expected: 3, name: "t"), [-1, 3.5, 1.5])
        let zero = try UpdateCodec.encodeInt4([0, 0, 0][...], rng: &rng)
        XCTAssertEqual(zero, CompressedTensor(count: 3, scale: 0, data: [0, 0]))
        XCTAssertEqual(UpdateCompression.int4.bytes(count: 390_410), 195_205)
    }

    func testInt4StochasticRoundingIsUnbiased() throws {
        // scale = 1 exactly; 2.3, -4.5 and 0.1 fall between steps. The mean over 20,000 draws
        // must be within 0.02 (over 5 standard errors: a Bernoulli step's sd is at most 0.5).
        let xs: [Float] = [7, 2.3, -4.5, 0.1, -6.9]
        var rng = SplitMix64(seed: 99)
        var sums = [Double](repeating: 0, count: xs.count)
        let draws = 20_000
        for _ in 0 ..< draws {
            let t = try UpdateCodec.encodeInt4(xs[...], rng: &rng)
            XCTAssertEqual(t.scale, 1)
            let d = try UpdateCodec.decodeInt4(t, expected: xs.count, name: "t")
            for i in 0 ..< xs.count {
                XCTAssertLessThan(abs(d[i] - xs[i]), 1, "within one step")
                sums[i] += Double(d[i])
            }
        }
        for i in 0 ..< xs.count {
            XCTAssertEqual(sums[i] / Double(draws), Double(xs[i]), accuracy: 0.02, "element \(i)")
        }
    }

    func testHostileInt4Refused() {
        func refused(_ t: CompressedTensor, expected: Int = 3, _ needle: String, line: UInt = #line) {
            XCTAssertThrowsError(try UpdateCodec.decodeInt4(t, expected: expected, name: "w"), line: line) { e in
                XCTAssertTrue("\(e)".contains(needle), "expected \"\(needle)\" in \(e)", line: line)
            }
        }
        XCTAssertEqual(try UpdateCodec.decodeInt4(CompressedTensor(count: 3, scale: 0.5, data: [0x21, 0x0F]), expected: 3, name: "w"), [0.5, 1, -0.5])
        refused(CompressedTensor(count: 4, scale: 1, data: [0x21, 0x0F]), "declares 4 elements")
        refused(CompressedTensor(count: 3, scale: 1, data: [0x21]), "1 bytes for 3 elements")
        refused(CompressedTensor(count: 3, scale: 1, data: [0x21, 0x0F, 0]), "3 bytes for 3 elements")
        for scale in [Float.nan, .infinity, -1] {
            refused(CompressedTensor(count: 3, scale: scale, data: [0x21, 0x0F]), "scale")
        }
        refused(CompressedTensor(count: 3, scale: 1, data: [0x81, 0x0F]), "element 1 is -8")
        refused(CompressedTensor(count: 3, scale: 1, data: [0x21, 0x08]), "element 2 is -8")
        refused(CompressedTensor(count: 3, scale: 1, data: [0x21, 0x1F]), "padding nibble")
    }

    func testWholeUpdateRoundTrips() throws {
        let shapes: [(name: String, shape: [Int])] = [("w", [2, 2]), ("b", [3])]
        let global = try Parameters(shapes: shapes, values: [0.5, 1, -1, 2, 0, 0.25, -0.5])
        // Deltas exactly representable in fp16: local comes back bit for bit.
        let local = try Parameters(shapes: shapes, values: [0.75, 0.875, -1, 2.5, -0.0625, 0.25, 1.5])
        let fp16 = try UpdateCodec.compress(local: local, global: global, as: .fp16, seed: 1)
        XCTAssertEqual(fp16.map(\.data.count), [8, 6])
        XCTAssertEqual(try UpdateCodec.decompress(fp16, as: .fp16, onto: global), local)

        let int8 = try UpdateCodec.compress(local: local, global: global, as: .int8, seed: 1)
        XCTAssertEqual(int8.map(\.data.count), [4, 3])
        XCTAssertEqual(int8[0].scale, 0.5 / 127, "max |delta| of w is 0.5")
        let back = try UpdateCodec.decompress(int8, as: .int8, onto: global)
        for i in 0 ..< local.count {
            XCTAssertLessThanOrEqual(abs(back.values[i] - local.values[i]), i < 4 ? 0.5 / 127 * 1.0001 : 2 / 127 * 1.0001)
        }
        XCTAssertThrowsError(try UpdateCodec.decompress(Array(int8.prefix(1)), as: .int8, onto: global))

        let int4 = try UpdateCodec.compress(local: local, global: global, as: .int4, seed: 1)
        XCTAssertEqual(int4.map(\.data.count), [2, 2], "4 and 3 elements, two per byte")
        XCTAssertEqual(int4[0].scale, 0.5 / 7, "max |delta| of w is 0.5")
        XCTAssertEqual(int4[1].scale, 2 / 7, "max |delta| of b is 2")
        let back4 = try UpdateCodec.decompress(int4, as: .int4, onto: global)
        for i in 0 ..< local.count {
            XCTAssertLessThanOrEqual(abs(back4.values[i] - local.values[i]), i < 4 ? 0.5 / 7 * 1.0001 : 2 / 7 * 1.0001)
        }
        XCTAssertThrowsError(try UpdateCodec.decompress(int4, as: .int8, onto: global), "int4 bytes are not int8 data")
        XCTAssertThrowsError(try UpdateCodec.decompress(int8, as: .none, onto: global))
    }
}
