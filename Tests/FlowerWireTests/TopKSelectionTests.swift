// Top-k beyond per-tensor u32: global selection over the whole update, the DGC-style warm-up
// schedule, and LEB128 index gaps (UPDATE_ENCODING_TOPK_VARINT), each against hand-computed
// examples; hostile varint frames are refused with the reason.
import FlowerBase
import FlowerCore
@testable import FlowerWireCodec
import XCTest

/// k (u32 LE), the given index bytes as they are, then the float32 values (LE).
func topkVarintData(_ k: UInt32, indexBytes: [UInt8], _ values: [Float]) -> [UInt8] {
    func le(_ v: UInt32) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v >> 16 & 0xFF), UInt8(v >> 24)] }
    return le(k) + indexBytes + values.flatMap { le($0.bitPattern) }
}

final class TopKSelectionTests: XCTestCase {
    func testOptionsParseAndPrint() throws {
        let all = try UpdateCompression(parsing: "topk:0.01,global,warmup=2,varint")
        XCTAssertEqual(all, .topk(fraction: 0.01, errorFeedback: true, global: true, warmupRounds: 2, varintIndices: true))
        XCTAssertEqual(all.description, "topk:0.01,global,warmup=2,varint")
        XCTAssertEqual(all.encodingName, "topk-varint")
        XCTAssertEqual(try UpdateCompression(parsing: "topk:0.05,varint,noef"), .topk(fraction: 0.05, errorFeedback: false, varintIndices: true))
        XCTAssertEqual(try UpdateCompression(parsing: "topk:0.01,warmup=0"), .topk(fraction: 0.01, errorFeedback: true))
        for bad in ["topk:0.01,global,global", "topk:0.01,warmup=101", "topk:0.01,warmup=-1", "topk:0.01,warmup=",
                    "topk:0.01,warmup=1,warmup=2", "topk:0.01,fast", "topk:0.01,", "topk:,global"] {
            XCTAssertThrowsError(try UpdateCompression(parsing: bad), bad)
        }
    }

    func testWarmupScheduleIsExponentialDownToTheFraction() throws {
        // R = 1: round 1 sends 0.01^(1/2) = 0.1; R = 3: 0.01^(1/4), 0.01^(2/4) = 0.1, 0.01^(3/4).
        let one = try UpdateCompression(parsing: "topk:0.01,warmup=1")
        XCTAssertEqual(one.topkFraction(round: 1), 0.1, accuracy: 1e-12)
        XCTAssertEqual(one.topkFraction(round: 2), 0.01)
        XCTAssertEqual(one.topkFraction(round: 0), 0.01)
        let three = try UpdateCompression(parsing: "topk:0.01,warmup=3")
        XCTAssertEqual(three.topkFraction(round: 1), 0.316227766, accuracy: 1e-9)
        XCTAssertEqual(three.topkFraction(round: 2), 0.1, accuracy: 1e-12)
        XCTAssertEqual(three.topkFraction(round: 3), 0.0316227766, accuracy: 1e-9)
        XCTAssertEqual(three.topkFraction(round: 4), 0.01)
        XCTAssertEqual(UpdateCompression.int8.topkFraction(round: 1), 1)

        // Through compress/decompress: 100 elements, topk:0.1,warmup=1 → round 1 keeps ⌈0.316… × 100⌉ = 32, round 2 keeps 10.
        let shapes: [(name: String, shape: [Int])] = [("w", [100])]
        let global = try Parameters(shapes: shapes, values: [Float](repeating: 0, count: 100))
        let local = try Parameters(shapes: shapes, values: (0 ..< 100).map { Float($0 + 1) / 128 })
        let mode = try UpdateCompression(parsing: "topk:0.1,warmup=1,noef")
        let r1 = try UpdateCodec.compress(local: local, global: global, as: mode, seed: 0, round: 1)
        XCTAssertEqual(r1[0].data.count, 4 + 8 * 32)
        let back = try UpdateCodec.decompress(r1, as: mode, onto: global, round: 1)
        XCTAssertEqual(back.values.filter { $0 != 0 }.count, 32)
        XCTAssertEqual(Array(back.values[68...]), Array(local.values[68...]), "the 32 largest are the last 32")
        XCTAssertThrowsError(try UpdateCodec.decompress(r1, as: mode, onto: global, round: 2)) {
            XCTAssertTrue("\($0)".contains("keeps 32 of 100 elements; the announced fraction allows at most 10"), "\($0)")
        }
        XCTAssertEqual(try UpdateCodec.compress(local: local, global: global, as: mode, seed: 0, round: 2)[0].data.count, 4 + 8 * 10)
    }

    func testGlobalSelectionChoosesOverTheWholeUpdate() throws {
        // w (6 elements) and b (2), topk:0.25: per tensor ⌈1.5⌉ = 2 of w and ⌈0.5⌉ = 1 of b, 3 in all.
        // Update w = 0.1 -0.2 0.05 0 0.3 0.01, b = -0.5 0.4 (from zero weights, so exact).
        // Per tensor: w1, w4 and b0. Globally the 3 largest |x| are b0 (0.5), b1 (0.4), w4 (0.3).
        let shapes: [(name: String, shape: [Int])] = [("w", [2, 3]), ("b", [2])]
        let global = try Parameters(shapes: shapes, values: [Float](repeating: 0, count: 8))
        let local = try Parameters(shapes: shapes, values: [0.1, -0.2, 0.05, 0, 0.3, 0.01, -0.5, 0.4])
        let perTensor = try UpdateCompression(parsing: "topk:0.25")
        let globalMode = try UpdateCompression(parsing: "topk:0.25,global")
        XCTAssertEqual(UpdateCodec.topkBudget(global.layout, mode: globalMode, round: 1), 3)

        var residual: [Float] = []
        let p = try UpdateCodec.compress(local: local, global: global, as: perTensor, seed: 0, residual: &residual)
        XCTAssertEqual(p[0].data, topkData([1, 4], [-0.2, 0.3]))
        XCTAssertEqual(p[1].data, topkData([0], [-0.5]))

        residual = []
        let g = try UpdateCodec.compress(local: local, global: global, as: globalMode, seed: 0, residual: &residual)
        XCTAssertEqual(g[0].data, topkData([4], [0.3]))
        XCTAssertEqual(g[1].data, topkData([0, 1], [-0.5, 0.4]))
        XCTAssertEqual(residual, [0.1, -0.2, 0.05, 0, 0, 0.01, 0, 0], "what was sent leaves the residual")
        XCTAssertEqual(try UpdateCodec.decompress(g, as: globalMode, onto: global).values, [0, 0, 0, 0, 0.3, 0, -0.5, 0.4])
        // Per-tensor bounds refuse b's two coordinates; the global bound refuses a fourth coordinate.
        XCTAssertThrowsError(try UpdateCodec.decompress(g, as: perTensor, onto: global)) {
            XCTAssertTrue("\($0)".contains("tensor b: top-k update keeps 2 of 2 elements; the announced fraction allows at most 1"), "\($0)")
        }
        let four = [CompressedTensor(count: 6, scale: 0, data: topkData([1, 4], [-0.2, 0.3])), g[1]]
        XCTAssertThrowsError(try UpdateCodec.decompress(four, as: globalMode, onto: global)) {
            XCTAssertTrue("\($0)".contains("tensor b: top-k update keeps 2 of 2 elements; the announced fraction allows at most 1"), "\($0)")
        }
        // A per-tensor update (what a client that ignores the global flag sends) fits the global bound.
        XCTAssertEqual(try UpdateCodec.decompress(p, as: globalMode, onto: global).values, [0, -0.2, 0, 0, 0.3, 0, -0.5, 0])

        // Next round, update 0 everywhere: error feedback sends the three largest residuals, w1 (-0.2), w0 (0.1), w2 (0.05).
        let again = try UpdateCodec.compress(local: global, global: global, as: globalMode, seed: 0, residual: &residual)
        XCTAssertEqual(again[0].data, topkData([0, 1, 2], [0.1, -0.2, 0.05]))
        XCTAssertEqual(again[1].data, topkData([], []))
        XCTAssertEqual(residual, [0, 0, 0, 0, 0, 0.01, 0, 0])
    }

    func testGlobalErrorFeedbackConservesMass() throws {
        // Five rounds on w (40) and b (7), topk:0.1,global: 4 + 1 = 5 coordinates a round anywhere.
        // Σ sent + final residual = Σ updates, up to one float32 rounding per addition.
        let shapes: [(name: String, shape: [Int])] = [("w", [5, 8]), ("b", [7])]
        let n = 47
        var rng = SplitMix64(seed: 9)
        func uniform() -> Float { Float(rng.next() >> 40) * 0x1p-24 - 0.5 }
        let global = try Parameters(shapes: shapes, values: (0 ..< n).map { _ in uniform() })
        let mode = try UpdateCompression(parsing: "topk:0.1,global")
        var residual: [Float] = []
        var sent = [Double](repeating: 0, count: n), truth = [Double](repeating: 0, count: n), bound = [Double](repeating: 0, count: n)
        for round in 1 ... 5 {
            // b's coordinates are larger: global selection gives b more than its per-tensor 1.
            let local = try Parameters(shapes: shapes, values: global.values.indices.map { global.values[$0] + uniform() * ($0 >= 40 ? 0.1 : 0.01) })
            let old = residual.isEmpty ? [Float](repeating: 0, count: n) : residual
            let tensors = try UpdateCodec.compress(local: local, global: global, as: mode, seed: 0, round: round, residual: &residual)
            XCTAssertNoThrow(try UpdateCodec.decompress(tensors, as: mode, onto: global, round: round))
            var dense: [Float] = []
            for (spec, t) in zip(global.layout, tensors) {
                dense += try UpdateCodec.decodeTopK(t, expected: spec.count, maxKept: spec.count, name: spec.name)
            }
            XCTAssertEqual(dense.filter { $0 != 0 }.count, 5, "round \(round): the whole budget")
            XCTAssertGreaterThan(dense[40...].filter { $0 != 0 }.count, 1, "round \(round): b gets more than its per-tensor 1")
            for i in 0 ..< n {
                let update = local.values[i] - global.values[i]
                sent[i] += Double(dense[i])
                truth[i] += Double(update)
                bound[i] += (Double(abs(update)) + Double(abs(old[i]))) * 0x1p-24
                if dense[i] != 0 { XCTAssertEqual(residual[i], 0, "a sent coordinate leaves the residual") }
            }
        }
        for i in 0 ..< n {
            XCTAssertEqual(sent[i] + Double(residual[i]), truth[i], accuracy: bound[i] + 1e-12, "element \(i)")
        }
    }

    func testVarintIndicesEncodeGapsAndRoundTrip() throws {
        // Indices 0, 130, 131 of 200: gaps 0, 129 (0x81 0x01), 0.
        var values = [Float](repeating: 0, count: 200)
        values[0] = 1; values[130] = -2; values[131] = 3
        let (t, kept) = try UpdateCodec.encodeTopK(values, keep: 3, varint: true)
        XCTAssertEqual(kept, [0, 130, 131])
        XCTAssertEqual(t.data, topkVarintData(3, indexBytes: [0x00, 0x81, 0x01, 0x00], [1, -2, 3]))
        XCTAssertEqual(try UpdateCodec.decodeTopK(t, expected: 200, maxKept: 3, varint: true, name: "w"), values)
        // A gap of 2^14 takes three bytes: 0x80 0x80 0x01.
        let far = UpdateCodec.encodeTopK([Float](repeating: 1, count: 20_000), kept: [16_384], varint: true)
        XCTAssertEqual(far.data, topkVarintData(1, indexBytes: [0x80, 0x80, 0x01], [1]))
        XCTAssertEqual(try UpdateCodec.decodeTopK(far, expected: 20_000, maxKept: 1, varint: true, name: "w")[16_384], 1)

        // Through compress/decompress on a 2-tensor model: the same values as u32 indices, fewer bytes.
        let shapes: [(name: String, shape: [Int])] = [("w", [30, 30]), ("b", [100])]
        var rng = SplitMix64(seed: 3)
        let global = try Parameters(shapes: shapes, values: [Float](repeating: 0, count: 1000))
        let local = try Parameters(shapes: shapes, values: (0 ..< 1000).map { _ in Float(rng.next() >> 40) * 0x1p-24 - 0.5 })
        let u32 = try UpdateCompression(parsing: "topk:0.05,noef")
        let varint = try UpdateCompression(parsing: "topk:0.05,noef,varint")
        let a = try UpdateCodec.compress(local: local, global: global, as: u32, seed: 0)
        let b = try UpdateCodec.compress(local: local, global: global, as: varint, seed: 0)
        XCTAssertEqual(try UpdateCodec.decompress(a, as: u32, onto: global),
                       try UpdateCodec.decompress(b, as: varint, onto: global, varintIndices: true))
        let bytesA = a.reduce(0) { $0 + $1.data.count }, bytesB = b.reduce(0) { $0 + $1.data.count }
        XCTAssertEqual(bytesA, 8 + 8 * 50)
        XCTAssertLessThan(bytesB, 8 + 6 * 50, "mean gap 20: one byte per index, rarely two")
        XCTAssertGreaterThanOrEqual(bytesB, 8 + 5 * 50)
    }

    func testHostileVarintTopKRefused() {
        func refused(_ data: [UInt8], maxKept: Int = 3, _ needle: String, line: UInt = #line) {
            let t = CompressedTensor(count: 200, scale: 0, data: data)
            XCTAssertThrowsError(try UpdateCodec.decodeTopK(t, expected: 200, maxKept: maxKept, varint: true, name: "w"), line: line) { e in
                XCTAssertTrue("\(e)".contains(needle), "expected \"\(needle)\" in \(e)", line: line)
            }
        }
        let good = topkVarintData(2, indexBytes: [0x05, 0x81, 0x01], [1, 2])  // indices 5 and 135
        var dense = [Float](repeating: 0, count: 200); dense[5] = 1; dense[135] = 2
        XCTAssertEqual(try UpdateCodec.decodeTopK(CompressedTensor(count: 200, scale: 0, data: good), expected: 200, maxKept: 3, varint: true, name: "w"), dense)
        // More declared than carried, or more than the fraction allows.
        refused(topkVarintData(3, indexBytes: [0x05, 0x81, 0x01], [1, 2]), "declares 3 kept values but carries 15 bytes (needs at least 19)")
        refused(topkVarintData(0xFFFF_FFFF, indexBytes: [0x05], [1]), maxKept: 200, "keeps 4294967295 of 200")
        refused(topkVarintData(4, indexBytes: [0, 0, 0, 0], [1, 2, 3, 4]), "keeps 4 of 200 elements; the announced fraction allows at most 3")
        // A varint that runs into the values: the index bytes are 1 short of what k varints need.
        refused(topkVarintData(2, indexBytes: [0x85, 0x81, 0x81], [1, 2]), "index 0 runs into the values")
        // Longer than 5 bytes, beyond u32, not in shortest form, out of range, trailing bytes, non-finite.
        refused(topkVarintData(1, indexBytes: [0x80, 0x80, 0x80, 0x80, 0x80, 0x00], [1]), maxKept: 3, "longer than 5 bytes")
        refused(topkVarintData(1, indexBytes: [0xFF, 0xFF, 0xFF, 0xFF, 0x1F], [1]), "does not fit u32")
        refused(topkVarintData(2, indexBytes: [0x85, 0x00, 0x01], [1, 2]), "not in its shortest form")
        refused(topkVarintData(2, indexBytes: [0x05, 0xC2, 0x01], [1, 2]), "index 200 (entry 1) is out of range for 200 elements")
        refused(topkVarintData(2, indexBytes: [0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0x00], [1, 2]), "index 4294967295 (entry 0) is out of range")
        refused(good + [0], "its indices end at byte 7, so it needs 15")
        refused(topkVarintData(2, indexBytes: [0x05, 0x81, 0x01], [1, .nan]), "value 1 is not finite")
        XCTAssertThrowsError(try UpdateCodec.decodeTopK(CompressedTensor(count: 200, scale: 0, data: topkVarintData(1, indexBytes: [0x05], [1])),
                                                        expected: 201, maxKept: 3, varint: true, name: "w")) {
            XCTAssertTrue("\($0)".contains("declares 200 elements, its shape holds 201"), "\($0)")
        }
    }
}
