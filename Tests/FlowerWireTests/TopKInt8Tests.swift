// Top-k with int8 values (`topk:F,int8`, UPDATE_ENCODING_TOPK_INT8): LEB128 index gaps and one
// stochastically rounded int8 step per kept value, checked against hand-computed frames; the
// rounding is unbiased (mean over many draws), error feedback keeps the rounding error, and
// hostile frames are refused with the reason.
import FlowerBase
import FlowerCore
@testable import FlowerWireCodec
import XCTest

/// k (u32 LE), the given index bytes as they are, then one byte per step.
func topkInt8Data(_ k: UInt32, indexBytes: [UInt8], _ steps: [Int8]) -> [UInt8] {
    [UInt8(k & 0xFF), UInt8(k >> 8 & 0xFF), UInt8(k >> 16 & 0xFF), UInt8(k >> 24)] + indexBytes + steps.map { UInt8(bitPattern: $0) }
}

final class TopKInt8Tests: XCTestCase {
    func testInt8OptionParsesAndPrints() throws {
        let mode = try UpdateCompression(parsing: "topk:0.01,global,warmup=3,int8")
        XCTAssertEqual(mode, .topk(fraction: 0.01, errorFeedback: true, global: true, warmupRounds: 3, varintIndices: true, int8Values: true))
        XCTAssertEqual(mode.description, "topk:0.01,global,warmup=3,int8")
        XCTAssertEqual(mode.encodingName, "topk-int8")
        XCTAssertEqual(try UpdateCompression(parsing: mode.description), mode)
        // int8 implies varint indices; naming both is the same mode.
        XCTAssertEqual(try UpdateCompression(parsing: "topk:0.01,global,warmup=3,varint,int8"), mode)
        XCTAssertEqual(try UpdateCompression(parsing: "topk:0.05,int8,noef"),
                       .topk(fraction: 0.05, errorFeedback: false, varintIndices: true, int8Values: true))
        for bad in ["topk:0.01,int8,int8", "topk:0.01,int16", "topk:0.01,int"] {
            XCTAssertThrowsError(try UpdateCompression(parsing: bad), bad)
        }
    }

    func testInt8FrameByHand() throws {
        // Indices 0, 130, 131 of 200 with values 127, -2, 3: scale 127/127 = 1, every value a whole
        // step (no rounding to draw); gaps 0, 129 (0x81 0x01), 0; steps 0x7F, 0xFE, 0x03.
        var values = [Float](repeating: 0, count: 200)
        values[0] = 127; values[130] = -2; values[131] = 3
        var rng = SplitMix64(seed: 1)
        let (t, decoded) = try UpdateCodec.encodeTopKInt8(values, kept: [0, 130, 131], rng: &rng)
        XCTAssertEqual(t.scale, 1)
        XCTAssertEqual(t.count, 200)
        XCTAssertEqual(t.data, [3, 0, 0, 0, 0x00, 0x81, 0x01, 0x00, 0x7F, 0xFE, 0x03])
        XCTAssertEqual(decoded, [127, -2, 3])
        let back = try UpdateCodec.decodeTopKInt8Counted(t, expected: 200, maxKept: 3, name: "w")
        XCTAssertEqual(back.kept, 3)
        XCTAssertEqual(back.values, values)
        // Nothing kept: k = 0, scale 0, four bytes.
        let empty = try UpdateCodec.encodeTopKInt8(values, kept: [], rng: &rng)
        XCTAssertEqual(empty.tensor, CompressedTensor(count: 200, scale: 0, data: [0, 0, 0, 0]))
        XCTAssertEqual(try UpdateCodec.decodeTopKInt8Counted(empty.tensor, expected: 200, maxKept: 0, name: "w").values,
                       [Float](repeating: 0, count: 200))
    }

    func testInt8StochasticRoundingIsUnbiased() throws {
        // Kept values 1 and 0.3: scale 1/127, 0.3 is 38.1 steps: 38 with probability 0.9, 39 with
        // 0.1. Over 20,000 draws the mean decoded value is 0.3 (the standard error is
        // √(0.09) / 127 / √20000 ≈ 1.7e-5; the bound is 10 of them) and only steps 38 and 39 occur.
        let values: [Float] = [1, 0, 0.3]
        let scale: Float = 1 / 127
        var sum: Double = 0
        var ups = 0
        let draws = 20_000
        for d in 0 ..< draws {
            var rng = SplitMix64(seed: UInt64(d))
            let (t, decoded) = try UpdateCodec.encodeTopKInt8(values, kept: [0, 2], rng: &rng)
            XCTAssertEqual(t.scale, scale)
            XCTAssertEqual(decoded[0], 1, accuracy: 1e-6)
            let step = Int8(bitPattern: t.data[t.data.count - 1])
            XCTAssertTrue(step == 38 || step == 39, "step \(step)")
            if step == 39 { ups += 1 }
            XCTAssertEqual(decoded[1], Float(step) * scale)
            sum += Double(decoded[1])
        }
        XCTAssertEqual(sum / Double(draws), 0.3, accuracy: 1.7e-4)
        XCTAssertEqual(Double(ups) / Double(draws), 0.1, accuracy: 0.015, "rounded up about one time in ten")
    }

    func testInt8ErrorFeedbackKeepsTheRoundingErrorAndConservesMass() throws {
        // w (40) and b (7), topk:0.1,global,int8: 5 coordinates a round. After each round a sent
        // coordinate's residual is its accumulated value minus what the server decodes (at most one
        // step), and over five rounds Σ decoded + final residual = Σ updates.
        let shapes: [(name: String, shape: [Int])] = [("w", [5, 8]), ("b", [7])]
        let n = 47
        var rng = SplitMix64(seed: 21)
        func uniform() -> Float { Float(rng.next() >> 40) * 0x1p-24 - 0.5 }
        let global = try Parameters(shapes: shapes, values: (0 ..< n).map { _ in uniform() })
        let mode = try UpdateCompression(parsing: "topk:0.1,global,int8")
        var residual: [Float] = []
        var sent = [Double](repeating: 0, count: n), truth = [Double](repeating: 0, count: n), bound = [Double](repeating: 0, count: n)
        var roundingErrors = 0
        for round in 1 ... 5 {
            let local = try Parameters(shapes: shapes, values: global.values.indices.map { global.values[$0] + uniform() * ($0 >= 40 ? 0.1 : 0.01) })
            let old = residual.isEmpty ? [Float](repeating: 0, count: n) : residual
            let tensors = try UpdateCodec.compress(local: local, global: global, as: mode, seed: UInt64(round), round: round, residual: &residual)
            let back = try UpdateCodec.decompress(tensors, as: mode, onto: global, round: round, varintIndices: true, int8Values: true)
            var dense: [Float] = []
            for (spec, t) in zip(global.layout, tensors) {
                dense += try UpdateCodec.decodeTopKInt8Counted(t, expected: spec.count, maxKept: spec.count, name: spec.name).values
            }
            XCTAssertEqual(tensors.map { t in Int(t.data[0]) }.reduce(0, +), 5, "round \(round): the whole budget")
            for i in 0 ..< n {
                let update = local.values[i] - global.values[i]
                XCTAssertEqual(back.values[i], global.values[i] + dense[i])
                let acc = update + old[i]
                if dense[i] != 0 {
                    // The tensor's scale is its largest kept |value| / 127: the error is under one step.
                    let scale = tensors[i < 40 ? 0 : 1].scale
                    XCTAssertEqual(residual[i], acc - dense[i], "round \(round) element \(i): the rounding error stays")
                    XCTAssertLessThanOrEqual(abs(residual[i]), scale * 1.0001)
                    if residual[i] != 0 { roundingErrors += 1 }
                } else {
                    XCTAssertEqual(residual[i], acc, "round \(round) element \(i): not sent, all of it stays")
                }
                sent[i] += Double(dense[i])
                truth[i] += Double(update)
                bound[i] += (Double(abs(update)) + Double(abs(old[i])) + Double(abs(dense[i]))) * 0x1p-23
            }
        }
        XCTAssertGreaterThan(roundingErrors, 10, "most sent values are not whole steps")
        for i in 0 ..< n {
            XCTAssertEqual(sent[i] + Double(residual[i]), truth[i], accuracy: bound[i] + 1e-12, "element \(i)")
        }
    }

    func testInt8TakesAboutAQuarterOfFloatValuesBytes() throws {
        // 1,000 coordinates, topk:0.05: 50 kept, gaps of about 20 (one byte each). float32 values with
        // varint indices: 4 + gaps + 200 bytes a tensor; int8 values: 4 + gaps + 50.
        let shapes: [(name: String, shape: [Int])] = [("w", [1000])]
        var rng = SplitMix64(seed: 5)
        let global = try Parameters(shapes: shapes, values: [Float](repeating: 0, count: 1000))
        let local = try Parameters(shapes: shapes, values: (0 ..< 1000).map { _ in Float(rng.next() >> 40) * 0x1p-24 - 0.5 })
        let varint = try UpdateCodec.compress(local: local, global: global, as: try UpdateCompression(parsing: "topk:0.05,noef,varint"), seed: 0)
        let int8 = try UpdateCodec.compress(local: local, global: global, as: try UpdateCompression(parsing: "topk:0.05,noef,int8"), seed: 0)
        let gaps = varint[0].data.count - 4 - 200
        XCTAssertGreaterThanOrEqual(gaps, 50)
        XCTAssertEqual(int8[0].data.count, 4 + gaps + 50)
        XCTAssertEqual(Array(int8[0].data[0 ..< 4 + gaps]), Array(varint[0].data[0 ..< 4 + gaps]), "the same indices, the same gaps")
        // Each decoded value is within one step of the float32 one.
        let exact = try UpdateCodec.decodeTopK(varint[0], expected: 1000, maxKept: 50, varint: true, name: "w")
        let rounded = try UpdateCodec.decodeTopKInt8Counted(int8[0], expected: 1000, maxKept: 50, name: "w").values
        for i in 0 ..< 1000 {
            if exact[i] == 0 { XCTAssertEqual(rounded[i], 0, "element \(i) was not kept") }
            XCTAssertEqual(rounded[i], exact[i], accuracy: int8[0].scale * 1.0001, "element \(i)")
        }
    }

    func testHostileInt8TopKRefused() {
        func refused(_ data: [UInt8], scale: Float = 0.5, maxKept: Int = 3, expected: Int = 200, _ needle: String, line: UInt = #line) {
            let t = CompressedTensor(count: 200, scale: scale, data: data)
            XCTAssertThrowsError(try UpdateCodec.decodeTopKInt8Counted(t, expected: expected, maxKept: maxKept, name: "w"), line: line) { e in
                XCTAssertTrue("\(e)".contains(needle), "expected \"\(needle)\" in \(e)", line: line)
            }
        }
        let good = topkInt8Data(2, indexBytes: [0x05, 0x81, 0x01], [2, -127])  // indices 5 and 135
        var dense = [Float](repeating: 0, count: 200); dense[5] = 1; dense[135] = -63.5
        XCTAssertEqual(try UpdateCodec.decodeTopKInt8Counted(CompressedTensor(count: 200, scale: 0.5, data: good),
                                                             expected: 200, maxKept: 3, name: "w").values, dense)
        // Scale NaN, infinite or negative.
        refused(good, scale: .nan, "top-k int8 scale nan is not a finite non-negative number")
        refused(good, scale: .infinity, "top-k int8 scale inf is not")
        refused(good, scale: -0.5, "top-k int8 scale -0.5 is not")
        // More declared than carried (checked before allocating), or than the fraction allows.
        refused(topkInt8Data(3, indexBytes: [0x05, 0x81, 0x01], [2, -127]), "declares 3 kept values but carries 9 bytes (needs at least 10)")
        refused(topkInt8Data(0xFFFF_FFFF, indexBytes: [0x05], [1]), maxKept: 200, "keeps 4294967295 of 200")
        refused(topkInt8Data(4, indexBytes: [0, 0, 0, 0], [1, 2, 3, 4]), "keeps 4 of 200 elements; the announced fraction allows at most 3")
        refused([1, 0, 0], "carries 3 bytes, not even its 4-byte count")
        // Out of range, a varint into the values, not shortest, trailing bytes, the step -128.
        refused(topkInt8Data(2, indexBytes: [0x05, 0xC2, 0x01], [1, 2]), "index 200 (entry 1) is out of range for 200 elements")
        refused(topkInt8Data(2, indexBytes: [0x85, 0x81, 0x81], [1, 2]), "index 0 runs into the values")
        refused(topkInt8Data(2, indexBytes: [0x85, 0x00, 0x01], [1, 2]), "not in its shortest form")
        refused(good + [0], "its indices end at byte 7, so it needs 9")
        refused(topkInt8Data(2, indexBytes: [0x05, 0x81, 0x01], [1, -128]), "top-k int8 value 1 is -128")
        refused(good, expected: 201, "declares 200 elements, its shape holds 201")
        // Duplicate or unsorted indices cannot be written: every gap adds at least 1 to the last index.
    }
}
