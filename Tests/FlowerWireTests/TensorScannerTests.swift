// TensorScanner (TensorScanner.swift) and the one-copy decode: hand-built protobuf bytes for every
// structural error the scanner must refuse, proto3 field order / unknown fields / repeated
// occurrences, and a counting libprotobuf-c allocator proving the tensor bytes skip it.
import CFlowerProto
import FlowerCore
@testable import FlowerWire
@testable import FlowerWireCodec
import Foundation
import XCTest

/// Counts what libprotobuf-c allocates through it (bytes and live blocks).
private final class AllocationCounter {
    var bytes = 0
    var blocks = 0
    var live = 0
    var sizes: [UnsafeMutableRawPointer: Int] = [:]

    /// A ProtobufCAllocator that reports to this counter (valid while the counter lives).
    func allocator() -> ProtobufCAllocator {
        ProtobufCAllocator(
            alloc: { data, size in
                let c = Unmanaged<AllocationCounter>.fromOpaque(data!).takeUnretainedValue()
                c.bytes += size; c.blocks += 1; c.live += 1
                return malloc(size)
            },
            free: { data, pointer in
                let c = Unmanaged<AllocationCounter>.fromOpaque(data!).takeUnretainedValue()
                if pointer != nil { c.live -= 1 }
                free(pointer)
            },
            allocator_data: Unmanaged.passUnretained(self).toOpaque())
    }
}

/// Float bit patterns, so NaN payloads, -0 and subnormals compare exactly.
private func bits(_ values: [Float]) -> [UInt32] { values.map(\.bitPattern) }

/// Little-endian bytes of floats.
private func le(_ values: [Float]) -> [UInt8] { values.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) } }

final class TensorScannerTests: XCTestCase {
    // MARK: One copy per direction

    /// A model whose values include NaN payloads, ±0, ±inf and subnormals (bit-exactness matters).
    func oddModel(count n: Int) throws -> Parameters {
        var rng = SplitMix64(seed: 99)
        var values = (0 ..< n).map { _ in Float(bitPattern: UInt32(truncatingIfNeeded: rng.next())) }
        let specials: [Float] = [.nan, -.nan, Float(bitPattern: 0x7fc0_1234), -0.0, 0, .infinity, -.infinity,
                                 .leastNonzeroMagnitude, -.leastNormalMagnitude, .greatestFiniteMagnitude]
        for (i, s) in specials.enumerated() { values[i * 7 % n] = s }
        return try Parameters(shapes: [("conv.weight", [n / 2, 2]), ("conv.bias", [n - n / 2 * 2]), ("scalar", [])].filter { $0.shape != [0] },
                              values: values + [42])
    }

    func testDecodingFitInsKeepsTensorBytesOutOfProtobufC() throws {
        let n = 1_000_001  // 4,000,004 bytes of floats
        let model = try oddModel(count: n)
        let frame = try WireEncoder.frame(.fit(FitIns(round: 9, parameters: model, config: ["lr": .double(0.5)])))
        let counter = AllocationCounter()
        var allocator = counter.allocator()
        let message = try frame.withUnsafeBytes {
            try WireDecoder.serverMessage(UnsafeRawBufferPointer(rebasing: $0[FrameHeader.size...]), allocator: &allocator)
        }
        guard case .fit(let ins) = message else { return XCTFail("decoded \(message.kind), not FitIns") }
        // Before TensorScanner libprotobuf-c allocated ≥ 4n bytes (a copy of every tensor's data).
        XCTAssertLessThan(counter.bytes, 4_096, "libprotobuf-c allocated \(counter.bytes) bytes for \(4 * n) bytes of tensors")
        XCTAssertGreaterThan(counter.blocks, 0, "the message itself must still go through libprotobuf-c")
        XCTAssertEqual(counter.live, 0, "unpacked C memory not freed")
        XCTAssertEqual(ins.round, 9)
        XCTAssertEqual(ins.config, ["lr": .double(0.5)])
        XCTAssertEqual(ins.parameters.layout, model.layout)
        XCTAssertTrue(bits(ins.parameters.values) == bits(model.values), "decoded values differ bit for bit")

        // The counter does see a copy when there is one: libprotobuf-c alone on the same payload.
        let direct = AllocationCounter()
        var directAllocator = direct.allocator()
        let unpacked = frame.withUnsafeBufferPointer {
            flwr__server_message__unpack(&directAllocator, $0.count - FrameHeader.size, $0.baseAddress! + FrameHeader.size)
        }
        let m = try XCTUnwrap(unpacked)
        flwr__server_message__free_unpacked(m, &directAllocator)
        XCTAssertGreaterThanOrEqual(direct.bytes, 4 * n, "plain unpack copies every tensor byte")
    }

    func testDecodingFitResKeepsTensorBytesOutOfProtobufC() throws {
        let model = try oddModel(count: 250_000)
        let frame = try WireEncoder.frame(.fitRes(FitRes(round: 2, parameters: model, numExamples: 7, metrics: ["a": .int(1)])))
        let counter = AllocationCounter()
        var allocator = counter.allocator()
        let message = try frame.withUnsafeBytes {
            try WireDecoder.clientMessage(UnsafeRawBufferPointer(rebasing: $0[FrameHeader.size...]), allocator: &allocator)
        }
        guard case .fitRes(let res) = message else { return XCTFail("decoded \(message.kind), not FitRes") }
        XCTAssertLessThan(counter.bytes, 4_096, "libprotobuf-c allocated \(counter.bytes) bytes")
        XCTAssertEqual(counter.live, 0)
        XCTAssertEqual(res.numExamples, 7)
        XCTAssertEqual(res.parameters.layout, model.layout)
        XCTAssertTrue(bits(res.parameters.values) == bits(model.values), "decoded values differ bit for bit")
    }

    /// The payload libprotobuf-c sees holds names, shapes and tokens only; the ranges point at the
    /// exact float bytes in the received payload.
    func testRewrittenPayloadHoldsTokensNotData() throws {
        let model = try testModel(count: 10_000)
        let frame = try WireEncoder.frame(.fit(FitIns(round: 1, parameters: model)))
        let payload = Array(frame.dropFirst(FrameHeader.size))
        let scanned = try payload.withUnsafeBytes { try TensorScanner.scan($0, envelope: .server) }
        let rewritten = try XCTUnwrap(scanned.rewritten)
        XCTAssertLessThan(rewritten.count, 64, "rewritten payload should hold metadata only")
        XCTAssertEqual(scanned.ranges.count, 2)
        var copied: [UInt8] = []
        for r in scanned.ranges { copied += payload[Int(r.offset) ..< Int(r.offset + r.count)] }
        XCTAssertEqual(copied, le(model.values))
    }

    func testMessagesWithoutParametersAreNotRewritten() throws {
        for message: ServerMessage in [.finish(roundsCompleted: 1, reason: "x"), .welcome(Welcome(protocolVersion: 1, sessionID: "s", zlib: false)),
                                       .getParameters(GetParametersIns(config: ["a": .bytes([1, 2])]))] {
            let payload = Array(try WireEncoder.frame(message).dropFirst(FrameHeader.size))
            let scanned = try payload.withUnsafeBytes { try TensorScanner.scan($0, envelope: .server) }
            XCTAssertNil(scanned.rewritten, "\(message.kind) was rewritten")
        }
        let payload = Array(try WireEncoder.frame(ClientMessage.goodbye(reason: "bye")).dropFirst(FrameHeader.size))
        XCTAssertNil(try payload.withUnsafeBytes { try TensorScanner.scan($0, envelope: .client) }.rewritten)
    }

    // MARK: Hand-built bytes: what proto3 allows

    let one = le([1]), two = le([2]), pair = le([3, 4])

    func fit(_ payload: [UInt8]) throws -> FitIns {
        guard case .fit(let ins) = try WireDecoder.serverMessage(payload) else { throw WireError.malformedMessage("not a FitIns") }
        return ins
    }

    func testFieldsInAnyOrderAndUnknownFieldsAreSkipped() throws {
        // Tensor: data, unknown fixed32 (9), dtype, unknown bytes (10), shape, unknown fixed64 (11), name.
        let tensor = PB.bytes(4, pair) + [0x4d, 1, 2, 3, 4] + PB.field(3, 0) + PB.bytes(10, [9, 9]) + PB.bytes(2, PB.varint(2))
            + [0x59] + [UInt8](repeating: 7, count: 8) + PB.bytes(1, Array("t".utf8))
        // Parameters with an unknown varint (5) around the tensor; FitIns fields reversed with an unknown field;
        // an unknown field in the envelope before and after.
        let params = PB.field(5, 300) + PB.bytes(1, tensor) + PB.field(5, 1)
        let fitIns = PB.bytes(99, [1, 2, 3]) + PB.bytes(2, params) + PB.field(1, 4)
        let payload = PB.field(20, 1) + PB.bytes(5, fitIns) + PB.bytes(21, [0])
        let ins = try fit(payload)
        XCTAssertEqual(ins.round, 4)
        XCTAssertEqual(ins.parameters.layout, [TensorSpec(name: "t", shape: [2], offset: 0)])
        XCTAssertEqual(ins.parameters.values, [3, 4])
    }

    /// proto3: a singular field repeated takes its last value; libprotobuf-c implements that, and
    /// the scanner's tokens follow it (only the last data is ever copied).
    func testRepeatedDataFieldLastOneWins() throws {
        let tensor = PB.bytes(1, Array("t".utf8)) + PB.bytes(2, PB.varint(1)) + PB.bytes(4, pair) + PB.bytes(4, one)
        XCTAssertEqual(try fit(PB.fitIns([tensor])).parameters.values, [1])
        // An empty data field after a non-empty one empties the tensor.
        let emptied = PB.bytes(1, Array("e".utf8)) + PB.bytes(2, PB.varint(0)) + PB.bytes(4, one) + PB.bytes(4, [])
        let ins = try fit(PB.fitIns([emptied]))
        XCTAssertEqual(ins.parameters.layout, [TensorSpec(name: "e", shape: [0], offset: 0)])
        XCTAssertEqual(ins.parameters.values, [])
    }

    /// An embedded message that occurs twice is merged (repeated fields concatenate): a FitIns whose
    /// Parameters are split across occurrences yields the tensors of all parts, in order. The
    /// envelope's members are a oneof, which libprotobuf-c does not merge: a FitIns sent twice is
    /// replaced by the later one (proto3 would merge it). The decoder follows libprotobuf-c in both,
    /// and copies only the tensor data that survives.
    func testSplitParametersMergeButARepeatedOneofMemberIsReplaced() throws {
        let t1 = PB.tensor(name: "a", shape: [1], data: one), t2 = PB.tensor(name: "b", shape: [2], data: pair)
        let t3 = PB.tensor(name: "c", shape: [1], data: two)
        let parametersSplit = PB.bytes(5, PB.bytes(2, PB.bytes(1, t1)) + PB.field(1, 1) + PB.bytes(2, PB.bytes(1, t2) + PB.bytes(1, t3)))
        let merged = try fit(parametersSplit)
        XCTAssertEqual(merged.round, 1)
        XCTAssertEqual(merged.parameters.layout.map(\.name), ["a", "b", "c"])
        XCTAssertEqual(merged.parameters.values, [1, 3, 4, 2])
        let envelopeSplit = PB.bytes(5, PB.field(1, 3) + PB.bytes(2, PB.bytes(1, t1))) + PB.bytes(5, PB.bytes(2, PB.bytes(1, t2)))
        let replaced = try fit(envelopeSplit)
        XCTAssertEqual(replaced.round, 0, "the later FitIns has no round")
        XCTAssertEqual(replaced.parameters.layout.map(\.name), ["b"])
        XCTAssertEqual(replaced.parameters.values, [3, 4])
    }

    /// A later member of the envelope's oneof replaces an earlier one, tensors and all.
    func testLaterOneofMemberReplacesEarlier() throws {
        let fitPart = PB.bytes(5, PB.bytes(2, PB.bytes(1, PB.tensor(name: "a", shape: [1], data: one))))
        let evalPart = PB.bytes(6, PB.field(1, 2) + PB.bytes(2, PB.bytes(1, PB.tensor(name: "z", shape: [2], data: pair))))
        guard case .evaluate(let e) = try WireDecoder.serverMessage(fitPart + evalPart) else { return XCTFail("expected EvaluateIns") }
        XCTAssertEqual(e.parameters.layout.map(\.name), ["z"])
        XCTAssertEqual(e.parameters.values, [3, 4])
        guard case .finish(let rounds, _, _) = try WireDecoder.serverMessage(fitPart + PB.bytes(8, PB.field(1, 5))) else { return XCTFail("expected Finish") }
        XCTAssertEqual(rounds, 5)
    }

    func testClientEnvelopePaths() throws {
        let tensor = PB.tensor(name: "w", shape: [2], data: pair)
        guard case .fitRes(let f) = try WireDecoder.clientMessage(PB.bytes(3, PB.field(2, 6) + PB.bytes(3, PB.bytes(1, tensor)) + PB.field(4, 12)))
        else { return XCTFail("expected FitRes") }
        XCTAssertEqual(f.round, 6); XCTAssertEqual(f.numExamples, 12); XCTAssertEqual(f.parameters.values, [3, 4])
        guard case .parametersRes(let p) = try WireDecoder.clientMessage(PB.bytes(2, PB.bytes(2, PB.bytes(1, tensor))))
        else { return XCTFail("expected ParametersRes") }
        XCTAssertEqual(p.parameters.values, [3, 4])
        // FitRes field 2 is `round`, not parameters: a varint there is fine, not a tensor path.
        let roundOnly = PB.bytes(3, PB.field(2, 1))
        XCTAssertEqual(try roundOnly.withUnsafeBytes { try TensorScanner.scan($0, envelope: .client) }.rewritten, roundOnly)
    }

    // MARK: Hand-built bytes: what must be refused

    func assertMalformed(_ payload: [UInt8], _ fragment: String, client: Bool = false, line: UInt = #line) {
        XCTAssertThrowsError(try client ? WireDecoder.clientMessage(payload).kind : WireDecoder.serverMessage(payload).kind, line: line) { error in
            let why: String
            switch error as? WireError {
            case .malformedMessage(let w)?, .limitExceeded(let w)?: why = w  // structure, or a WireLimits bound
            default: return XCTFail("got \(error)", line: line)
            }
            XCTAssertTrue(why.contains(fragment), "\"\(why)\" lacks \"\(fragment)\"", line: line)
        }
    }

    func testWrongWireTypesOnTensorPathsAreRefused() {
        assertMalformed(PB.field(5, 1), "ServerMessage.fit_ins at byte 0 has wire type 0; it must be 2")
        assertMalformed(PB.bytes(5, PB.field(2, 1)), "ServerMessage.fit_ins.parameters at byte 2 has wire type 0")
        assertMalformed(PB.bytes(5, PB.bytes(2, [0x0d, 0, 0, 0, 0])), "ServerMessage.fit_ins.parameters.tensors at byte 4 has wire type 5")
        assertMalformed(PB.fitIns([PB.bytes(1, [0x74]) + [0x21] + [UInt8](repeating: 0, count: 8)]), "ServerMessage.fit_ins.parameters.tensors.data at byte 11 has wire type 1")
        assertMalformed(PB.bytes(3, PB.field(3, 1)), "ClientMessage.fit_res.parameters at byte 2 has wire type 0", client: true)
        assertMalformed(PB.bytes(3, PB.bytes(3, [0x08, 1])), "ClientMessage.fit_res.parameters.tensors at byte 4 has wire type 0", client: true)
        assertMalformed(PB.bytes(2, PB.field(2, 0)), "ClientMessage.parameters_res.parameters at byte 2 has wire type 0", client: true)
    }

    func testGroupsAndInvalidWireTypesAreRefused() {
        assertMalformed([0x0b, 0x0c], "field 1 at byte 0 has wire type 3")
        assertMalformed(PB.bytes(5, [0x0e]), "FitIns: field 1 at byte 2 has wire type 6")
        assertMalformed(PB.fitIns([[0x27]]), "Tensor: field 4 at byte 8 has wire type 7")
    }

    /// A message of many tiny tensors is refused before libprotobuf-c allocates for them; the cap
    /// itself still scans.
    func testMoreTensorsThanTheCapAreRefused() throws {
        let tiny = PB.bytes(4, [1, 2, 3, 4])
        assertMalformed(PB.fitIns(Array(repeating: tiny, count: TensorScanner.maxTensors + 1)), "more than 65536 tensors in one message")
        let atCap = PB.fitIns(Array(repeating: tiny, count: TensorScanner.maxTensors))
        let scanned = try atCap.withUnsafeBytes { try TensorScanner.scan($0, envelope: .server) }
        XCTAssertEqual(scanned.ranges.count, TensorScanner.maxTensors)
    }

    func testFieldNumberZeroIsRefused() {
        assertMalformed([0x00, 0x01], "field number 0 at byte 0")
        assertMalformed(PB.fitIns([[0x02, 0x00]]), "Tensor: field number 0")
    }

    func testTruncatedVarintsAreRefused() {
        assertMalformed([0x2a, 0x80], "ServerMessage: truncated length of field 5 at byte 1")
        assertMalformed(PB.bytes(5, [0x08, 0xff, 0xff]), "FitIns: truncated varint of field 1 at byte 3")
        assertMalformed(PB.bytes(5, [0x80]), "FitIns: truncated field tag at byte 2")
        assertMalformed([0x08] + [UInt8](repeating: 0xff, count: 10) + [0x01], "varint of field 1 at byte 1 runs past 10 bytes")
        assertMalformed([0x80, 0x80, 0x80, 0x80, 0x80, 0x01], "field tag at byte 0 runs past 5 bytes")
        assertMalformed([0xf8, 0xff, 0xff, 0xff, 0x7f, 0x00], "exceeds 32 bits")
        // A length prefix longer than 5 bytes (libprotobuf-c's bound), even if its value is small.
        assertMalformed([0x2a, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00], "length of field 5 at byte 1 runs past 5 bytes")
    }

    func testLengthsOverrunningTheirParentAreRefused() {
        // Past the end of the whole payload.
        assertMalformed([0x2a, 0x05, 0x08, 0x01], "ServerMessage: field 5 at byte 0 declares 5 bytes, but its message has 2 left")
        // Inside the payload, but past the enclosing Parameters (the tensor claims 9 of its 4 bytes).
        let params: [UInt8] = [0x0a, 0x09, 0x0a, 0x01, 0x74]
        let payload = PB.bytes(5, PB.bytes(2, params) + PB.bytes(3, [UInt8](repeating: 0, count: 12)))
        assertMalformed(payload, "Parameters: field 1 at byte 4 declares 9 bytes, but its message has 3 left")
        // Tensor data overrunning its Tensor.
        let tensor: [UInt8] = [0x22, 0x08, 0, 0, 0, 0]
        assertMalformed(PB.bytes(5, PB.bytes(2, PB.bytes(1, tensor) + PB.bytes(1, PB.tensor(name: "x", shape: [1], data: one)))),
                        "Tensor: field 4 at byte 6 declares 8 bytes, but its message has 4 left")
        // A length over Int32.max.
        assertMalformed([0x2a, 0xff, 0xff, 0xff, 0xff, 0x0f], "declares 4294967295 bytes")
        // A fixed64 cut short inside a Tensor.
        assertMalformed(PB.fitIns([[0x59, 1, 2, 3]]), "Tensor: field 11 at byte 8 needs 8 bytes, 3 left")
    }

    /// Validation after scanning is unchanged: lengths vs shape, dtype, names (ProtoCodecTests covers
    /// the rest); here with the data split so the last occurrence is the one checked.
    func testValidationUsesTheDataThatWins() {
        let tensor = PB.bytes(1, Array("t".utf8)) + PB.bytes(2, PB.varint(2)) + PB.bytes(4, pair) + PB.bytes(4, one)
        XCTAssertThrowsError(try WireDecoder.serverMessage(PB.fitIns([tensor]))) { error in
            guard case .badParameters(let why) = error as? WireError else { return XCTFail("got \(error)") }
            XCTAssertTrue(why.contains("carries 4 bytes"), why)
        }
    }
}
