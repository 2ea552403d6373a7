// Protobuf mapping (ProtoEncode.swift / ProtoDecode.swift): round trips of every message, and
// hand-written protobuf bytes for every invalid case the decoder must refuse.
import FlowerCore
@testable import FlowerWire
@testable import FlowerWireCodec
import XCTest

/// A tiny protobuf writer, independent of libprotobuf-c, for crafting exact (bad) inputs.
enum PB {
    static func varint(_ v: UInt64) -> [UInt8] {
        var v = v, out: [UInt8] = []
        while v >= 0x80 { out.append(UInt8(v & 0x7f) | 0x80); v >>= 7 }
        return out + [UInt8(v)]
    }
    static func field(_ n: UInt64, _ v: UInt64) -> [UInt8] { varint(n << 3) + varint(v) }
    static func bytes(_ n: UInt64, _ b: [UInt8]) -> [UInt8] { varint(n << 3 | 2) + varint(UInt64(b.count)) + b }
    static func tensor(name: String, shape: [Int64], dtype: UInt64 = 0, data: [UInt8]) -> [UInt8] {
        bytes(1, Array(name.utf8)) + bytes(2, shape.flatMap { varint(UInt64(bitPattern: $0)) })
            + (dtype == 0 ? [] : field(3, dtype)) + bytes(4, data)
    }
    /// ServerMessage{fit_ins: FitIns{round: 1, parameters: Parameters{tensors}}}.
    static func fitIns(_ tensors: [[UInt8]]) -> [UInt8] {
        bytes(5, field(1, 1) + bytes(2, tensors.flatMap { bytes(1, $0) }))
    }
}

final class ProtoCodecTests: XCTestCase {
    func decodeServer(_ frame: [UInt8]) throws -> ServerMessage {
        var d = EmbeddedFrameReader(limit: 1 << 24)
        let frames = try d.feed(frame)
        XCTAssertEqual(frames.count, 1)
        return try WireDecoder.serverMessage(frames[0], limit: 1 << 24)
    }

    func decodeClient(_ frame: [UInt8]) throws -> ClientMessage {
        var d = EmbeddedFrameReader(limit: 1 << 24)
        let frames = try d.feed(frame)
        XCTAssertEqual(frames.count, 1)
        return try WireDecoder.clientMessage(frames[0], limit: 1 << 24)
    }

    let config: Config = ["lr": .double(0.01), "epochs": .int(-2), "tag": .string("fedavg ✓"),
                          "shuffle": .bool(true), "blob": .bytes([0, 1, 255])]

    func testFitInsRoundTripsExactly() throws {
        let model = try testModel(count: 1234)
        for compression in [false, true] {
            let frame = try WireEncoder.frame(.fit(FitIns(round: 7, parameters: model, config: config)), compression: compression)
            guard case .fit(let ins) = try decodeServer(frame) else { return XCTFail("not FitIns") }
            XCTAssertEqual(ins.round, 7)
            XCTAssertEqual(ins.parameters, model)
            XCTAssertEqual(ins.config, config)
        }
        // The payload is the floats plus 33 bytes, counted by hand: envelope tag+len (3), round (2),
        // parameters tag+len (3); tensor "w" [1111]: field 3 + name 3 + shape 4 + data tag+len 3;
        // tensor "b" [123]: field 3 + name 3 + shape 3 + data tag+len 3.
        let frame = try WireEncoder.frame(.fit(FitIns(round: 7, parameters: model)))
        XCTAssertEqual(frame.count - 5 - 1234 * 4, 33, "names, shapes, tags and lengths")
    }

    func testEveryServerMessageRoundTrips() throws {
        let model = try testModel(count: 20)
        let c = Challenge(protocolVersion: 1, nonce: Array(0 ..< 32), authRequired: true, maxFrameBytes: 256 << 20)
        guard case .challenge(let c2) = try decodeServer(try WireEncoder.frame(.challenge(c))) else { return XCTFail() }
        XCTAssertEqual(c2, c)
        let w = Welcome(protocolVersion: 1, sessionID: "s9", zlib: true)
        guard case .welcome(let w2) = try decodeServer(try WireEncoder.frame(.welcome(w))) else { return XCTFail() }
        XCTAssertEqual(w2, w)
        let r = Refusal(reason: .duplicateIdentity, message: "taken")
        guard case .refusal(let r2) = try decodeServer(try WireEncoder.frame(.refusal(r))) else { return XCTFail() }
        XCTAssertEqual(r2, r)
        guard case .getParameters(let g) = try decodeServer(try WireEncoder.frame(.getParameters(GetParametersIns(config: config)))) else { return XCTFail() }
        XCTAssertEqual(g.config, config)
        guard case .evaluate(let e) = try decodeServer(try WireEncoder.frame(.evaluate(EvaluateIns(round: 2, parameters: model, config: config)))) else { return XCTFail() }
        XCTAssertEqual(e.round, 2); XCTAssertEqual(e.parameters, model); XCTAssertEqual(e.config, config)
        guard case .reconnect(let s, let why) = try decodeServer(try WireEncoder.frame(.reconnect(seconds: 30, reason: "busy"))) else { return XCTFail() }
        XCTAssertEqual(s, 30); XCTAssertEqual(why, "busy")
        guard case .finish(let n, let why2, _) = try decodeServer(try WireEncoder.frame(.finish(roundsCompleted: 5, reason: "done"))) else { return XCTFail() }
        XCTAssertEqual(n, 5); XCTAssertEqual(why2, "done")
    }

    func testEveryClientMessageRoundTrips() throws {
        let model = try testModel(count: 20)
        let h = Hello(protocolVersion: 1, clientID: "client-3", partition: 3, acceptsZlib: true,
                      authProof: Array(repeating: 9, count: 32), agent: "test", maxFrameBytes: 1 << 20)
        guard case .hello(let h2) = try decodeClient(try WireEncoder.frame(.hello(h))) else { return XCTFail() }
        XCTAssertEqual(h2, h)
        var noPartition = h
        noPartition.partition = nil; noPartition.acceptsZlib = false
        guard case .hello(let h3) = try decodeClient(try WireEncoder.frame(.hello(noPartition))) else { return XCTFail() }
        XCTAssertEqual(h3, noPartition)
        guard case .parametersRes(let p) = try decodeClient(try WireEncoder.frame(.parametersRes(ParametersRes(parameters: model)))) else { return XCTFail() }
        XCTAssertEqual(p.parameters, model); XCTAssertEqual(p.status, .ok)
        let fit = FitRes(status: Status(code: .fitFailed, message: "oom"), round: 4, parameters: model, numExamples: 600, metrics: config)
        guard case .fitRes(let f) = try decodeClient(try WireEncoder.frame(.fitRes(fit))) else { return XCTFail() }
        XCTAssertEqual(f.status, fit.status); XCTAssertEqual(f.round, 4); XCTAssertEqual(f.parameters, model)
        XCTAssertEqual(f.numExamples, 600); XCTAssertEqual(f.metrics, config)
        let ev = EvaluateRes(round: 4, loss: 0.25, numExamples: 100, metrics: ["accuracy": .double(0.9)])
        guard case .evaluateRes(let e) = try decodeClient(try WireEncoder.frame(.evaluateRes(ev))) else { return XCTFail() }
        XCTAssertEqual(e.loss, 0.25); XCTAssertEqual(e.numExamples, 100); XCTAssertEqual(e.metrics, ev.metrics)
        guard case .goodbye(let why) = try decodeClient(try WireEncoder.frame(.goodbye(reason: "SIGTERM"))) else { return XCTFail() }
        XCTAssertEqual(why, "SIGTERM")
    }

    func testEncodingIsDeterministic() throws {
        let a = try WireEncoder.frame(.getParameters(GetParametersIns(config: config)))
        let b = try WireEncoder.frame(.getParameters(GetParametersIns(config: config)))
        XCTAssertEqual(a, b)
    }

    func testHandWrittenTensorDecodes() throws {
        let data: [UInt8] = [0, 0, 0x80, 0x3f, 0, 0, 0, 0x40]  // 1.0, 2.0 little-endian
        guard case .fit(let ins) = try WireDecoder.serverMessage(PB.fitIns([PB.tensor(name: "t", shape: [2, 1], data: data)])) else { return XCTFail() }
        XCTAssertEqual(ins.parameters.values, [1, 2])
        XCTAssertEqual(ins.parameters.layout, [TensorSpec(name: "t", shape: [2, 1], offset: 0)])
    }

    func assertBadParameters(_ payload: [UInt8], _ fragment: String, line: UInt = #line) {
        XCTAssertThrowsError(try WireDecoder.serverMessage(payload), line: line) { error in
            guard case .badParameters(let why) = error as? WireError else { return XCTFail("got \(error)", line: line) }
            XCTAssertTrue(why.contains(fragment), "\(why) lacks \(fragment)", line: line)
        }
    }

    func testTensorsThatCannotBeRightAreRefused() {
        assertBadParameters(PB.fitIns([PB.tensor(name: "short", shape: [3], data: [UInt8](repeating: 0, count: 8))]), "carries 8 bytes")
        assertBadParameters(PB.fitIns([PB.tensor(name: "long", shape: [1], data: [UInt8](repeating: 0, count: 8))]), "carries 8 bytes")
        assertBadParameters(PB.fitIns([PB.tensor(name: "neg", shape: [-1], data: [])]), "negative dimension")
        assertBadParameters(PB.fitIns([PB.tensor(name: "huge", shape: [1 << 40, 1 << 40, 0], data: [])]), "overflows")
        assertBadParameters(PB.fitIns([PB.tensor(name: "f64", shape: [1], dtype: 2, data: [0, 0, 0, 0])]), "dtype 2")
        assertBadParameters(PB.fitIns([PB.tensor(name: "f16", shape: [1], dtype: 1, data: [0, 0, 0, 0])]), "needs 1 float16 (2 bytes) but carries 4 bytes")
        assertBadParameters(PB.fitIns([PB.tensor(name: "a", shape: [1], data: [0, 0, 0, 0]),
                                       PB.tensor(name: "a", shape: [1], data: [0, 0, 0, 0])]), "appears twice")
    }

    func testGarbageAndEmptyEnvelopesAreMalformed() {
        for payload: [UInt8] in [[0xff, 0xff, 0xff], [0x2a, 0x05, 0x01], [], PB.field(99, 1)] {
            XCTAssertThrowsError(try WireDecoder.serverMessage(payload)) { error in
                guard case .malformedMessage = error as? WireError else { return XCTFail("got \(error) for \(payload)") }
            }
            XCTAssertThrowsError(try WireDecoder.clientMessage(payload)) { error in
                guard case .malformedMessage = error as? WireError else { return XCTFail("got \(error) for \(payload)") }
            }
        }
    }

    func testUnsendableValuesAreRefused() throws {
        XCTAssertThrowsError(try WireEncoder.frame(.getParameters(GetParametersIns(config: ["a\0b": .int(1)])))) { error in
            guard case .cannotEncode = error as? WireError else { return XCTFail("got \(error)") }
        }
        // Free text is made sendable instead: NUL replaced, cut to WireLimits.maxTextBytes.
        guard case .goodbye(let why) = try decodeClient(try WireEncoder.frame(.goodbye(reason: "a\0b"))) else { return XCTFail() }
        XCTAssertEqual(why, "a\u{FFFD}b")
        let long = String(repeating: "traceback line é\n", count: 1_000)
        let failed = FitRes(status: Status(code: .fitFailed, message: long), round: 1, parameters: Parameters(), numExamples: 0)
        guard case .fitRes(let res) = try decodeClient(try WireEncoder.frame(.fitRes(failed))) else { return XCTFail() }
        XCTAssertTrue(res.status.message.hasPrefix("traceback line é\\ntraceback"), String(res.status.message.prefix(40)))
        XCTAssertTrue(res.status.message.hasSuffix("…"))
        XCTAssertEqual(WireLimits.sendableText(long).utf8.count <= WireLimits.maxTextBytes, true)
        let tooLong = Hello(protocolVersion: 1, clientID: String(repeating: "c", count: 257), partition: nil, acceptsZlib: false,
                            authProof: [], agent: "", maxFrameBytes: 0)
        XCTAssertThrowsError(try WireEncoder.frame(.hello(tooLong))) { error in
            guard case .cannotEncode(let why) = error as? WireError else { return XCTFail("got \(error)") }
            XCTAssertTrue(why.contains("client_id of 257 bytes exceeds 256"), why)
        }
        let model = try testModel(count: 1000)
        XCTAssertThrowsError(try WireEncoder.frame(.fit(FitIns(round: 1, parameters: model)), peerLimit: 4000)) { error in
            guard case .cannotEncode(let why) = error as? WireError else { return XCTFail("got \(error)") }
            XCTAssertTrue(why.contains("4000"), why)
        }
    }
}
