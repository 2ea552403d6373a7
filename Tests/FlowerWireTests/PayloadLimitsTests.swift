// WireLimits on the decode path (PayloadLimits.swift, ProtoDecode.swift): hostile counts, shapes,
// numbers and strings refused with typed errors before libprotobuf-c allocates for them, and a
// counting allocator proving what one message may make libprotobuf-c allocate.
import CFlowerProto
import FlowerCore
@testable import FlowerWire
@testable import FlowerWireCodec
import Foundation
import Testing
import XCTest

/// Counts what libprotobuf-c allocates through it (bytes requested, blocks, live blocks).
final class CountingAllocator {
    var bytes = 0
    var blocks = 0
    var live = 0

    func allocator() -> ProtobufCAllocator {
        ProtobufCAllocator(
            alloc: { data, size in
                guard let data else { return nil }
                let c = Unmanaged<CountingAllocator>.fromOpaque(data).takeUnretainedValue()
                c.bytes += size; c.blocks += 1; c.live += 1
                return malloc(size)
            },
            free: { data, pointer in
                guard let data else { return }
                let c = Unmanaged<CountingAllocator>.fromOpaque(data).takeUnretainedValue()
                if pointer != nil { c.live -= 1 }
                free(pointer)
            },
            allocator_data: Unmanaged.passUnretained(self).toOpaque())
    }

    /// What the budget charges for these blocks (16 bytes of overhead each).
    var charged: Int { bytes + 16 * blocks }
}

/// Protobuf builders for hostile payloads.
enum Hostile {
    static func zigzag(_ v: Int64) -> UInt64 { UInt64(bitPattern: (v << 1) ^ (v >> 63)) }
    static func fitRes(_ body: [UInt8]) -> [UInt8] { PB.bytes(3, body) }
    static func hello(_ body: [UInt8]) -> [UInt8] { PB.bytes(1, body) }
    static func entry(key: String, value: [UInt8]) -> [UInt8] { PB.bytes(1, Array(key.utf8)) + PB.bytes(2, value) }
    /// `count` copies of `piece`, built without intermediate arrays.
    static func repeated(_ piece: [UInt8], _ count: Int) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(piece.count * count)
        for _ in 0 ..< count { out.append(contentsOf: piece) }
        return out
    }
}

/// Decodes with a counting allocator under the budget; returns the error (if any) and the counter.
func decodeCounting(_ payload: [UInt8], client: Bool) -> (Error?, CountingAllocator) {
    let counter = CountingAllocator()
    var allocator = counter.allocator()
    let error: Error? = payload.withUnsafeBytes { raw in
        do {
            if client { _ = try WireDecoder.clientMessage(raw, allocator: &allocator) } else { _ = try WireDecoder.serverMessage(raw, allocator: &allocator) }
            return nil
        } catch { return error }
    }
    return (error, counter)
}

func limitMessage(_ error: Error?) -> String? {
    if case .limitExceeded(let why)? = error as? WireError { return why }
    return nil
}

final class PayloadLimitsTests: XCTestCase {
    // MARK: Counts

    /// A FitRes claiming ten million (empty, 2-byte) metrics entries: 20 MB that made
    /// libprotobuf-c allocate ~70 bytes per entry. Refused at entry 4,097, before unpacking.
    func testTenMillionMapEntriesAreRefusedBeforeUnpacking() {
        let payload = Hostile.fitRes(PB.field(2, 1) + Hostile.repeated(PB.bytes(5, []), 10_000_000))
        XCTAssertGreaterThan(payload.count, 20_000_000)
        let (error, counter) = decodeCounting(payload, client: true)
        let why = limitMessage(error)
        XCTAssertNotNil(why, "got \(String(describing: error))")
        XCTAssertTrue(why?.contains("ClientMessage.fit_res.metrics at byte 8199: more than 4096 config/metrics map entries") ?? false, why ?? "")
        XCTAssertEqual(counter.blocks, 0, "libprotobuf-c allocated \(counter.bytes) bytes before the refusal")
        // The description names the limit and where it is documented.
        XCTAssertTrue("\(error!)".contains("proto/README.md"), "\(error!)")
    }

    /// The cap counts all maps of a message together, and the cap itself decodes.
    func testMapEntryCapIsPerMessageAndTheCapItselfDecodes() throws {
        let entries = (0 ..< WireLimits.maxMapEntries).map { Hostile.entry(key: "m\($0)", value: PB.field(2, 2)) }
        let atCap = Hostile.fitRes(PB.field(2, 1) + entries.flatMap { PB.bytes(5, $0) })
        guard case .fitRes(let res) = try WireDecoder.clientMessage(atCap) else { return XCTFail("not FitRes") }
        XCTAssertEqual(res.metrics.count, WireLimits.maxMapEntries)
        XCTAssertEqual(res.metrics["m4095"], .int(1))  // sint64 zigzag: 2 encodes 1
        let over = Hostile.fitRes(entries.flatMap { PB.bytes(5, $0) } + PB.bytes(5, []))
        XCTAssertNotNil(limitMessage(decodeCounting(over, client: true).0))
        // Split across the two maps a FitIns cannot carry, but GetParametersIns + FitIns in one
        // ServerMessage (the oneof's earlier member is replaced, yet both were parsed): counted together.
        let half = (0 ..< 2_100).flatMap { PB.bytes(3, Hostile.entry(key: "k\($0)", value: PB.field(3, 1))) }
        let two = PB.bytes(5, half) + PB.bytes(5, half)
        XCTAssertTrue(limitMessage(decodeCounting(two, client: false).0)?.contains("more than 4096") ?? false)
    }

    /// A shape list of 10^7 dimensions, packed (10 MB) and unpacked (20 MB): refused at 33.
    func testShapeOfTenMillionDimensionsIsRefused() {
        let packed = PB.fitIns([PB.bytes(1, Array("t".utf8)) + PB.bytes(2, [UInt8](repeating: 1, count: 10_000_000))])
        let (e1, c1) = decodeCounting(packed, client: false)
        XCTAssertTrue(limitMessage(e1)?.contains("ServerMessage.fit_ins.parameters.tensors.shape at byte 20: more than 32 dimensions in one tensor's shape") ?? false,
                      "\(String(describing: e1))")
        XCTAssertEqual(c1.blocks, 0)
        let unpacked = PB.fitIns([Hostile.repeated(PB.field(2, 1), 10_000_000)])
        let (e2, c2) = decodeCounting(unpacked, client: false)
        XCTAssertTrue(limitMessage(e2)?.contains("more than 32 dimensions") ?? false, "\(String(describing: e2))")
        XCTAssertEqual(c2.blocks, 0)
        // 32 dimensions of 1 decode; the count restarts for each tensor.
        let ok = PB.fitIns([PB.tensor(name: "a", shape: [Int64](repeating: 1, count: 32), data: [0, 0, 0x80, 0x3f]),
                            PB.tensor(name: "b", shape: [Int64](repeating: 1, count: 32), data: [0, 0, 0, 0x40])])
        guard case .fit(let ins)? = try? WireDecoder.serverMessage(ok) else { return XCTFail("32-dim tensors should decode") }
        XCTAssertEqual(ins.parameters.values, [1, 2])
    }

    func testAcceptCompressionListIsBounded() {
        let hello = Hostile.hello(PB.field(1, 1) + PB.bytes(2, Array("c".utf8)) + PB.bytes(4, [UInt8](repeating: 1, count: 17)))
        XCTAssertTrue(limitMessage(decodeCounting(hello, client: true).0)?.contains("entries in accept_compression") ?? false)
    }

    // MARK: The allocation bound

    /// Hostile frames that pass every count cap: what libprotobuf-c allocates (counted through
    /// the allocator, with 16 bytes of malloc overhead per block) stays within
    /// `WireLimits.decodeBudget`, or the frame is refused before unpacking with nothing allocated.
    func testHostileFramesStayWithinTheDecodeBudget() {
        let cases: [(String, [UInt8], Bool, Int)] = [
            // 4,096 empty map entries (the cap): the most per byte a map can cost.
            ("4096 empty entries", Hostile.fitRes(Hostile.repeated(PB.bytes(5, []), WireLimits.maxMapEntries)), true, WireLimits.maxMapEntries),
            // 65,536 tensors of one dimension and no data.
            ("65536 bare tensors", PB.fitIns(Array(repeating: PB.bytes(2, [1]), count: WireLimits.maxTensors)), false, WireLimits.maxTensors),
            // 65,536 tensors with 32 one-byte dimensions each.
            ("65536 x 32 dims", PB.fitIns(Array(repeating: PB.bytes(2, [UInt8](repeating: 0, count: 32)), count: WireLimits.maxTensors)), false, WireLimits.maxTensors),
            // A flood of unknown varint fields (2 bytes each; libprotobuf-c keeps each aside).
            ("1 MB of unknown fields", Hostile.fitRes(Hostile.repeated(PB.field(15, 0), 500_000)), true, 0),
            ("unknown fields at the top", Hostile.repeated(PB.field(15, 0), 500_000), true, 0),
        ]
        for (name, payload, client, elements) in cases {
            let (error, counter) = decodeCounting(payload, client: client)
            let budget = WireLimits.decodeBudget(payloadBytes: payload.count, elements: elements)
            XCTAssertLessThanOrEqual(counter.charged, budget, "\(name): \(counter.charged) bytes charged for a \(payload.count)-byte payload")
            XCTAssertEqual(counter.live, 0, "\(name): unpacked memory not freed")
            if limitMessage(error)?.contains("would allocate at least") == true {
                XCTAssertEqual(counter.blocks, 0, "\(name): refused by the estimate, yet \(counter.bytes) bytes were allocated first")
            }
            print("decode budget: \(name): payload \(payload.count) B, libprotobuf-c \(counter.charged) B (\(String(format: "%.1f", Double(counter.charged) / Double(payload.count)))x), \(error.map { "refused: \($0)" } ?? "decoded")")
        }
        // The unknown-field floods are refused before unpacking (about 60x their size otherwise).
        for flood in [Hostile.repeated(PB.field(15, 0), 500_000), Hostile.fitRes(Hostile.repeated(PB.field(15, 0), 500_000))] {
            let (error, counter) = decodeCounting(flood, client: true)
            XCTAssertTrue(limitMessage(error)?.contains("would allocate at least") ?? false, "\(String(describing: error))")
            XCTAssertEqual(counter.blocks, 0)
        }
    }

    /// Honest extremes decode within the budget: 4,096 real metrics and 65,536 named tensors.
    func testHonestExtremesDecodeWithinTheBudget() throws {
        let metrics = (0 ..< WireLimits.maxMapEntries).flatMap { PB.bytes(5, Hostile.entry(key: "metric_\($0)", value: [0x09] + [UInt8](repeating: 0, count: 8))) }
        let fit = Hostile.fitRes(PB.field(2, 3) + metrics)
        let (e1, c1) = decodeCounting(fit, client: true)
        XCTAssertNil(e1, "\(String(describing: e1))")
        XCTAssertLessThanOrEqual(c1.charged, WireLimits.decodeBudget(payloadBytes: fit.count, elements: WireLimits.maxMapEntries))
        let tensors = (0 ..< WireLimits.maxTensors).map { PB.tensor(name: "t\($0)", shape: [1], data: [0, 0, 0x80, 0x3f]) }
        let ins = PB.fitIns(tensors)
        let (e2, c2) = decodeCounting(ins, client: false)
        XCTAssertNil(e2, "\(String(describing: e2))")
        XCTAssertLessThanOrEqual(c2.charged, WireLimits.decodeBudget(payloadBytes: ins.count, elements: WireLimits.maxTensors))
        print("decode budget: honest 4096 metrics: \(fit.count) B -> \(c1.charged) B; 65536 named tensors: \(ins.count) B -> \(c2.charged) B")
    }

    /// The allocator itself refuses past its budget: libprotobuf-c's unpack then fails cleanly
    /// (nothing leaks) and the error says why.
    func testBudgetedAllocatorStopsUnpackAndLeaksNothing() throws {
        let model = try testModel(count: 100)
        let config: Config = Dictionary(uniqueKeysWithValues: (0 ..< 50).map { ("key\($0)", Scalar.string(String(repeating: "v", count: 100))) })
        let frame = try WireEncoder.frame(.fit(FitIns(round: 1, parameters: model, config: config)))
        let payload = Array(frame.dropFirst(FrameHeader.size))
        let counter = CountingAllocator()
        var inner = counter.allocator()
        let result: (Flwr__ServerMessage?, Bool) = payload.withUnsafeBufferPointer { buf in
            try! DecodeBudget.with(budget: 2_000, inner: &inner) { allocator, state in
                let m = flwr__server_message__unpack(allocator, buf.count, buf.baseAddress)
                defer { if let m { flwr__server_message__free_unpacked(m, allocator) } }
                return (m?.pointee, state.pointee.exceeded)
            }
        }
        XCTAssertNil(result.0, "unpack should fail past a 2,000-byte budget")
        XCTAssertTrue(result.1)
        XCTAssertEqual(counter.live, 0, "libprotobuf-c leaked after an allocation failure")
        XCTAssertLessThanOrEqual(counter.charged, 2_000)
        // The same payload decodes under its real budget.
        guard case .fit(let ins) = try WireDecoder.serverMessage(payload) else { return XCTFail("not FitIns") }
        XCTAssertEqual(ins.config.count, 50)
    }
}

/// Every number the schema allows, at its extremes: refused with a typed error naming the field,
/// or (where the schema gives it a meaning) accepted as documented in proto/README.md.
struct NumberBoundsTests {
    static let max64 = UInt64(Int64.max)

    struct Case: CustomTestStringConvertible, Sendable {
        let name: String
        let payload: [UInt8]
        let client: Bool
        let fragment: String
        var testDescription: String { name }
    }

    static let refused: [Case] = [
        Case(name: "FitRes.round Int64.max", payload: Hostile.fitRes(PB.field(2, max64)), client: true, fragment: "FitRes.round = 9223372036854775807 exceeds 4294967295"),
        Case(name: "FitRes.round UInt64.max", payload: Hostile.fitRes(PB.field(2, .max)), client: true, fragment: "FitRes.round = 18446744073709551615"),
        Case(name: "FitRes.num_examples Int64.max", payload: Hostile.fitRes(PB.field(2, 1) + PB.field(4, max64)), client: true,
             fragment: "FitRes.num_examples = 9223372036854775807 exceeds 2^53"),
        Case(name: "FitRes.num_examples -1", payload: Hostile.fitRes(PB.field(2, 1) + PB.field(4, UInt64(bitPattern: -1))), client: true,
             fragment: "FitRes.num_examples = -1 is negative"),
        Case(name: "EvaluateRes.num_examples Int64.max", payload: PB.bytes(4, PB.field(2, 1) + PB.field(4, max64)), client: true,
             fragment: "EvaluateRes.num_examples = 9223372036854775807"),
        Case(name: "EvaluateRes.round Int64.max", payload: PB.bytes(4, PB.field(2, max64)), client: true, fragment: "EvaluateRes.round"),
        Case(name: "Hello.partition Int64.max", payload: Hostile.hello(PB.field(1, 1) + PB.bytes(2, [0x63]) + PB.field(3, Hostile.zigzag(.max))), client: true,
             fragment: "Hello.partition = 9223372036854775807"),
        Case(name: "Hello.partition Int64.min", payload: Hostile.hello(PB.field(1, 1) + PB.bytes(2, [0x63]) + PB.field(3, Hostile.zigzag(.min))), client: true,
             fragment: "Hello.partition = -9223372036854775808"),
        Case(name: "FitIns.round Int64.max", payload: PB.bytes(5, PB.field(1, max64)), client: false, fragment: "FitIns.round"),
        Case(name: "EvaluateIns.round Int64.max", payload: PB.bytes(6, PB.field(1, max64)), client: false, fragment: "EvaluateIns.round"),
        Case(name: "Finish.rounds_completed Int64.max", payload: PB.bytes(8, PB.field(1, max64)), client: false, fragment: "Finish.rounds_completed"),
        Case(name: "Reconnect.seconds UInt32.max", payload: PB.bytes(7, PB.field(1, UInt64(UInt32.max))), client: false, fragment: "Reconnect.seconds = 4294967295 exceeds 3600"),
    ]

    @Test("out-of-range numbers are refused as limitExceeded", arguments: refused)
    func outOfRangeNumbersAreRefused(_ c: Case) {
        let error = decodeCounting(c.payload, client: c.client).0
        let why = limitMessage(error)
        #expect(why?.contains(c.fragment) == true, "\(c.name): \(String(describing: error))")
    }

    @Test("Int64.max in tensor shapes, Status.code and dtype are typed errors")
    func shapeStatusDtypeExtremes() {
        for shape: [Int64] in [[.max], [.max, 2], [1 << 32, 1 << 32]] {
            let payload = PB.fitIns([PB.tensor(name: "t", shape: shape, data: [0, 0, 0, 0])])
            guard case .badParameters(let why)? = decodeCounting(payload, client: false).0 as? WireError else {
                Issue.record("shape \(shape) was not refused as badParameters"); continue
            }
            #expect(why.contains("overflows") || why.contains("needs"), "\(why)")
        }
        let dtype = PB.fitIns([PB.tensor(name: "t", shape: [1], dtype: Self.max64, data: [0, 0, 0, 0])])
        #expect((decodeCounting(dtype, client: false).0 as? WireError).map { if case .badParameters = $0 { true } else { false } } == true)
        let status = Hostile.fitRes(PB.bytes(1, PB.field(1, UInt64(Int32.max))))
        #expect("\(decodeCounting(status, client: true).0.map { "\($0)" } ?? "")".contains("unknown Status.code 2147483647"))
    }

    @Test("numbers whose extremes mean something are accepted as documented")
    func meaningfulExtremesAreAccepted() throws {
        // max_frame_bytes = UInt64.max: "no limit beyond the 4 GiB frame format" (clamped).
        let hello = Hostile.hello(PB.field(1, 1) + PB.bytes(2, Array("c1".utf8)) + PB.field(7, .max))
        guard case .hello(let h) = try WireDecoder.clientMessage(hello) else { Issue.record("not Hello"); return }
        #expect(h.maxFrameBytes == Int.max)
        // A config value of Int64.max is data, carried exactly.
        let config = PB.bytes(4, PB.bytes(1, Hostile.entry(key: "k", value: PB.field(2, Hostile.zigzag(.max)))))
        guard case .getParameters(let ins) = try WireDecoder.serverMessage(config) else { Issue.record("not GetParametersIns"); return }
        #expect(ins.config["k"] == .int(.max))
        // num_examples at 2^53 and rounds at 2^32-1 are the largest accepted.
        let edge = Hostile.fitRes(PB.field(2, UInt64(UInt32.max)) + PB.field(4, 1 << 53))
        guard case .fitRes(let res) = try WireDecoder.clientMessage(edge) else { Issue.record("not FitRes"); return }
        #expect(res.round == Int(UInt32.max) && res.numExamples == 1 << 53)
    }
}

/// What the limits walk costs on the decode path, printed for BENCHMARKS.md ("Wire hardening").
final class PayloadLimitsReleaseTests: XCTestCase {
    override func setUpWithError() throws {
        #if DEBUG
        throw XCTSkip("release-only: run swift test -c release --filter ReleaseTests")
        #endif
    }

    func testLimitsWalkIsSmallNextToTheDecodeOfALargeModel() throws {
        for count in [390_410, 10_000_000] {
            let model = try testModel(count: count)
            let config: Config = Dictionary(uniqueKeysWithValues: (0 ..< 20).map { ("key\($0)", Scalar.double(Double($0))) })
            let frame = try WireEncoder.frame(.fit(FitIns(round: 1, parameters: model, config: config)))
            let payload = Array(frame.dropFirst(FrameHeader.size))
            func median(_ body: () throws -> Void) rethrows -> Duration {
                var times: [Duration] = []
                for _ in 0 ..< 7 {
                    let start = ContinuousClock.now
                    try body()
                    times.append(ContinuousClock.now - start)
                }
                return times.sorted()[3]
            }
            let walk = try median { _ = try payload.withUnsafeBytes { try PayloadLimits.check($0, envelope: .server) } }
            var decoded: ServerMessage?
            let decode = try median { decoded = try WireDecoder.serverMessage(payload) }
            guard case .fit(let ins)? = decoded else { return XCTFail("not FitIns") }
            XCTAssertEqual(ins.parameters.count, count)
            let ms = { (d: Duration) in Double(d.components.seconds) * 1e3 + Double(d.components.attoseconds) / 1e15 }
            print(String(format: "limits walk: %d params (%d B): PayloadLimits.check %.3f ms, whole decode %.3f ms (%.1f%%), decode %.2f GB/s",
                         count, payload.count, ms(walk), ms(decode), 100 * ms(walk) / ms(decode), Double(payload.count) / ms(decode) / 1e6))
        }
    }
}
