// UpdateCompression.swift: fp16 against hand-computed binary16 bit patterns, int8 and int4
// (hand-packed nibbles) stochastic rounding, top-k selection and error feedback's conservation of mass, against the true mean over many draws, and hostile encodings refused before use.
import FlowerBase
import FlowerCore
@testable import FlowerWireCodec
import XCTest

/// A top-k tensor's bytes: `declared` (default: the number of indices), the indices, the values.
func topkData(_ indices: [UInt32], _ values: [Float], declared: UInt32? = nil) -> [UInt8] {
    func le(_ v: UInt32) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v >> 16 & 0xFF), UInt8(v >> 24)] }
    return le(declared ?? UInt32(indices.count)) + indices.flatMap(le) + values.flatMap { le($0.bitPattern) }
}

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

    func testTopKParsesAndCounts() throws {
        XCTAssertEqual(try UpdateCompression(parsing: "topk:0.01"), .topk(fraction: 0.01, errorFeedback: true))
        XCTAssertEqual(try UpdateCompression(parsing: "topk:0.5,noef"), .topk(fraction: 0.5, errorFeedback: false))
        XCTAssertEqual(try UpdateCompression(parsing: "topk:1"), .topk(fraction: 1, errorFeedback: true))
        XCTAssertEqual(try UpdateCompression(parsing: "int4"), .int4)
        XCTAssertEqual(UpdateCompression.topk(fraction: 0.01, errorFeedback: false).description, "topk:0.01,noef")
        for bad in ["topk:0", "topk:1.5", "topk:-0.1", "topk:x", "topk:nan", "topk:", "int2", "topk:0.1,ef"] {
            XCTAssertThrowsError(try UpdateCompression(parsing: bad), bad)
        }
        // ⌈F × count⌉, at least one, at most all.
        XCTAssertEqual(UpdateCodec.topkCount(390_410, fraction: 0.01), 3905)
        XCTAssertEqual(UpdateCodec.topkCount(10, fraction: 0.01), 1)
        XCTAssertEqual(UpdateCodec.topkCount(300, fraction: 0.01), 3)
        XCTAssertEqual(UpdateCodec.topkCount(5, fraction: 1), 5)
        XCTAssertEqual(UpdateCodec.topkCount(0, fraction: 0.5), 0)
        XCTAssertEqual(UpdateCompression.topk(fraction: 0.01, errorFeedback: true).bytes(count: 300), 4 + 3 * 8)
    }

    func testTopKKeepsTheLargestAndEncodesThemExactly() throws {
        // |x| = 0.5 3 2 0 3 1: keep 3 → indices 1, 2, 4 (3, 2, 3), in increasing order.
        let (t, kept) = try UpdateCodec.encodeTopK([0.5, -3, 2, 0, -3, 1], keep: 3)
        XCTAssertEqual(kept, [1, 2, 4])
        XCTAssertEqual(t.count, 6)
        XCTAssertEqual(t.scale, 0)
        XCTAssertEqual(t.data, [3, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 4, 0, 0, 0,
                                0, 0, 0x40, 0xC0, 0, 0, 0, 0x40, 0, 0, 0x40, 0xC0], "k, indices, then -3, 2, -3 as float32 LE")
        XCTAssertEqual(try UpdateCodec.decodeTopK(t, expected: 6, maxKept: 3, name: "t"), [0, -3, 2, 0, -3, 0])
        // Ties go to the lower index; k is exactly what was asked for.
        XCTAssertEqual(try UpdateCodec.encodeTopK([1, -1, 1, 0.5], keep: 2).kept, [0, 1])
        XCTAssertEqual(try UpdateCodec.encodeTopK([0, 0, 0], keep: 1).kept, [0])
        XCTAssertThrowsError(try UpdateCodec.encodeTopK([1, .nan], keep: 1))
    }

    func testTopKErrorFeedbackConservesMass() throws {
        // Six rounds of updates on two tensors (40 and 7 elements), topk:0.1 → 4 and 1 sent per
        // round. Each round sent + new residual equals update + old residual element for element
        // up to the float32 rounding of that one addition, so over the rounds
        // Σ sent + final residual = Σ updates within Σ (|update| + |old residual|) · 2^-24.
        let shapes: [(name: String, shape: [Int])] = [("w", [5, 8]), ("b", [7])]
        let n = 47
        var rng = SplitMix64(seed: 5)
        func uniform() -> Float { Float(rng.next() >> 40) * 0x1p-24 - 0.5 }
        let global = try Parameters(shapes: shapes, values: (0 ..< n).map { _ in uniform() * 4 })
        let mode = UpdateCompression.topk(fraction: 0.1, errorFeedback: true)
        var residual: [Float] = []
        var sent = [Double](repeating: 0, count: n), truth = [Double](repeating: 0, count: n), bound = [Double](repeating: 0, count: n)
        var everSent = Set<Int>()
        for round in 0 ..< 6 {
            // Varied magnitudes, so coordinates that lose now win later through their residual.
            let local = try Parameters(shapes: shapes, values: global.values.indices.map { global.values[$0] + uniform() * Float(1 + $0 % 5) * 0.01 })
            let old = residual.isEmpty ? [Float](repeating: 0, count: n) : residual
            let tensors = try UpdateCodec.compress(local: local, global: global, as: mode, seed: UInt64(round), residual: &residual)
            XCTAssertEqual(residual.count, n)
            var dense: [Float] = []
            for (spec, t) in zip(global.layout, tensors) {
                dense += try UpdateCodec.decodeTopK(t, expected: spec.count, maxKept: UpdateCodec.topkCount(spec.count, fraction: 0.1), name: spec.name)
            }
            XCTAssertEqual(dense[0 ..< 40].filter { $0 != 0 }.count, 4, "round \(round): 4 of w")
            XCTAssertEqual(dense[40...].filter { $0 != 0 }.count, 1, "round \(round): 1 of b")
            for i in 0 ..< n {
                let update = local.values[i] - global.values[i]  // the update exactly as the codec forms it
                if dense[i] != 0 {
                    everSent.insert(i)
                    XCTAssertEqual(residual[i], 0, "a sent coordinate leaves the residual")
                }
                sent[i] += Double(dense[i])
                truth[i] += Double(update)
                bound[i] += (Double(abs(update)) + Double(abs(old[i]))) * 0x1p-24
            }
        }
        for i in 0 ..< n {
            XCTAssertEqual(sent[i] + Double(residual[i]), truth[i], accuracy: bound[i] + 1e-12, "element \(i)")
        }
        XCTAssertGreaterThan(everSent.count, 10, "coordinates held back earlier win later rounds")

        // Error feedback off: the residual is not touched, and what was not sent is gone.
        var untouched: [Float] = []
        let local = try Parameters(shapes: shapes, values: global.values.map { $0 + 0.25 })
        let once = try UpdateCodec.compress(local: local, global: global, as: .topk(fraction: 0.1, errorFeedback: false), seed: 0, residual: &untouched)
        XCTAssertTrue(untouched.isEmpty)
        XCTAssertEqual(try UpdateCodec.decodeTopK(once[1], expected: 7, maxKept: 1, name: "b").filter { $0 != 0 }.count, 1)
    }

    func testHostileTopKRefused() {
        func refused(_ t: CompressedTensor, maxKept: Int = 2, _ needle: String, line: UInt = #line) {
            XCTAssertThrowsError(try UpdateCodec.decodeTopK(t, expected: 5, maxKept: maxKept, name: "w"), line: line) { e in
                XCTAssertTrue("\(e)".contains(needle), "expected \"\(needle)\" in \(e)", line: line)
            }
        }
        XCTAssertEqual(try UpdateCodec.decodeTopK(CompressedTensor(count: 5, scale: 0, data: topkData([1, 3], [1, -2])), expected: 5, maxKept: 2, name: "w"), [0, 1, 0, -2, 0])
        refused(CompressedTensor(count: 5, scale: 0, data: topkData([1, 3], [1, -2], declared: 3)), maxKept: 3, "declares 3 kept values but carries 20 bytes")
        refused(CompressedTensor(count: 5, scale: 0, data: topkData([1, 3], [1, -2], declared: 0xFFFF_FFFF)), maxKept: 5, "keeps 4294967295 of 5")
        refused(CompressedTensor(count: 5, scale: 0, data: topkData([1, 3], [1, -2]) + [0]), "carries 21 bytes")
        refused(CompressedTensor(count: 5, scale: 0, data: topkData([0, 1, 3], [1, 1, -2])), "keeps 3 of 5 elements; the announced fraction allows at most 2")
        refused(CompressedTensor(count: 5, scale: 0, data: topkData([1, 5], [1, -2])), "index 5 (entry 1) is out of range")
        refused(CompressedTensor(count: 5, scale: 0, data: topkData([3, 3], [1, -2])), "does not follow 3; indices must be strictly increasing")
        refused(CompressedTensor(count: 5, scale: 0, data: topkData([3, 1], [1, -2])), "index 1 (entry 1) does not follow 3")
        refused(CompressedTensor(count: 5, scale: 0, data: topkData([1, 3], [1, .infinity])), "value 1 is not finite")
        refused(CompressedTensor(count: 5, scale: 1, data: topkData([1, 3], [1, -2])), "scale")
        refused(CompressedTensor(count: 5, scale: 0, data: [1, 0]), "4-byte count")
        refused(CompressedTensor(count: 6, scale: 0, data: topkData([1, 3], [1, -2])), "declares 6 elements")
    }

    /// Counts at the ends of their types, declared by a peer, are refused before anything is
    /// allocated or indexed: Int64.max elements, 10^7 kept values in a few bytes (both index encodings).
    func testHugeDeclaredCountsRefusedBeforeAllocation() {
        func refused(_ body: () throws -> [Float], _ needle: String, line: UInt = #line) {
            XCTAssertThrowsError(try body(), line: line) { e in
                XCTAssertTrue("\(e)".contains(needle), "expected \"\(needle)\" in \(e)", line: line)
            }
        }
        let huge = Int(Int64.max)
        refused({ try UpdateCodec.decodeInt8(CompressedTensor(count: huge, scale: 1, data: [1]), expected: 10, name: "w") }, "declares \(huge) elements")
        refused({ try UpdateCodec.decodeInt4(CompressedTensor(count: huge, scale: 1, data: [1]), expected: 10, name: "w") }, "declares \(huge) elements")
        refused({ try UpdateCodec.decodeFP16(CompressedTensor(count: huge, scale: 0, data: [0, 0]), expected: 10, name: "w") }, "declares \(huge) elements")
        refused({ try UpdateCodec.decodeTopK(CompressedTensor(count: huge, scale: 0, data: topkData([1], [1])), expected: 10, maxKept: 10, name: "w") }, "declares \(huge) elements")
        let tenMillion = 10_000_000
        let short = topkData([1], [1], declared: UInt32(tenMillion))
        refused({ try UpdateCodec.decodeTopK(CompressedTensor(count: tenMillion, scale: 0, data: short), expected: tenMillion, maxKept: tenMillion, name: "w") },
                "declares 10000000 kept values but carries 12 bytes (needs 80000004)")
        refused({ try UpdateCodec.decodeTopK(CompressedTensor(count: tenMillion, scale: 0, data: short), expected: tenMillion, maxKept: tenMillion, varint: true, name: "w") },
                "needs at least 50000004")
        // Top-k with int8 values: the same bounds, 2 bytes per kept value at the least.
        refused({ try UpdateCodec.decodeTopKInt8Counted(CompressedTensor(count: huge, scale: 1, data: topkInt8Data(1, indexBytes: [0x01], [1])),
                                                         expected: 10, maxKept: 10, name: "w").values }, "declares \(huge) elements")
        refused({ try UpdateCodec.decodeTopKInt8Counted(CompressedTensor(count: tenMillion, scale: 1, data: topkInt8Data(UInt32(tenMillion), indexBytes: [0x01], [1])),
                                                         expected: tenMillion, maxKept: tenMillion, name: "w").values },
                "declares 10000000 kept values but carries 6 bytes (needs at least 20000004)")
    }
}
