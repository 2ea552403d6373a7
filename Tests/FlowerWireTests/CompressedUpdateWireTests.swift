// Compressed updates on the wire (Welcome.update_encoding, FitRes.update): a real WireServer and
// WireClient on loopback exchange fp16 and int8 updates that the server adds back onto the FitIns
// weights; hostile or mismatched updates from a raw socket are refused with the reason.
import FlowerBase
import FlowerCore
@testable import FlowerWire
@testable import FlowerWireCodec
import TestSupport
import XCTest

/// Adds a fixed, varied delta ((i mod 7) − 3) / 50 to parameter i.
struct DeltaClient: Client {
    static func delta(_ i: Int) -> Float { Float(i % 7 - 3) / 50 }
    func getParameters(_ ins: GetParametersIns) async throws -> ParametersRes { ParametersRes(parameters: Parameters()) }
    func fit(_ ins: FitIns) async throws -> FitRes {
        var p = ins.parameters
        for i in p.values.indices { p.values[i] += Self.delta(i) }
        return FitRes(round: ins.round, parameters: p, numExamples: 10)
    }
    func evaluate(_ ins: EvaluateIns) async throws -> EvaluateRes { EvaluateRes(round: ins.round, loss: 0, numExamples: 1) }
}

final class CompressedUpdateWireTests: XCTestCase {
    private func server(_ manager: TestManager, _ mode: UpdateCompression) async throws -> (WireServer, Int) {
        var config = WireServerConfig(host: "127.0.0.1", port: 0, maxFrameBytes: 1 << 20)
        config.updateCompression = mode
        config.compressionAllowed = false  // measure the update encoding alone, not zlib on top
        let server = WireServer(config: config, manager: manager, logger: quietLogger)
        return (server, try await server.start())
    }

    /// One fit over loopback under `mode`: the weights the server hands on, and the FitRes bytes received.
    private func fitOnce(_ mode: UpdateCompression, model: Parameters) async throws -> (Parameters, UInt64) {
        let manager = TestManager()
        let (server, port) = try await server(manager, mode)
        var config = clientConfig(port, id: "c-\(mode)")
        config.acceptCompression = false
        config.updateSeed = 11
        let cfg = config
        let run = Task { try await WireClient.run(config: cfg, client: DeltaClient(), logger: quietLogger) }
        defer { run.cancel() }
        let proxy = try await manager.waitForProxy("c-\(mode)") as! WireClientProxy
        let before = proxy.bytesIn
        let res = try await proxy.fit(FitIns(round: 2, parameters: model), timeout: .seconds(30))
        let received = proxy.bytesIn - before
        XCTAssertEqual(res.status.code, .ok)
        XCTAssertEqual(res.numExamples, 10)
        await proxy.finish(roundsCompleted: 2, reason: "done")
        _ = try await run.value
        await server.stop()
        return (res.parameters, received)
    }

    func testFP16AndInt8UpdatesReachTheStrategyAsWeights() async throws {
        let model = try testModel(count: 10_000)
        let truth = model.values.indices.map { model.values[$0] + DeltaClient.delta($0) }
        let (plain, plainBytes) = try await fitOnce(.none, model: model)
        XCTAssertEqual(plain.values, truth)

        let (fp16, fp16Bytes) = try await fitOnce(.fp16, model: model)
        XCTAssertEqual(fp16.layout, model.layout)
        for i in truth.indices {
            // The delta (|d| <= 0.06) in binary16 is off by at most 2^-15 before the float32 addition.
            XCTAssertEqual(fp16.values[i], truth[i], accuracy: 0x1p-15 + abs(truth[i]) * 0x1p-22, "fp16 element \(i)")
        }
        let (int8, int8Bytes) = try await fitOnce(.int8, model: model)
        let step: Float = 0.06 / 127
        var sumError: Double = 0
        for i in truth.indices {
            XCTAssertEqual(int8.values[i], truth[i], accuracy: step * 1.001 + abs(truth[i]) * 0x1p-22, "int8 element \(i)")
            sumError += Double(int8.values[i] - truth[i])
        }
        // Unbiased: the mean error over 10,000 stochastically rounded elements is a small
        // fraction of a step (one step's standard error is under step/2/√10000).
        XCTAssertLessThan(abs(sumError / Double(truth.count)), Double(step) * 0.03)
        let (int4, int4Bytes) = try await fitOnce(.int4, model: model)
        let step4: Float = 0.06 / 7
        var sumError4: Double = 0
        for i in truth.indices {
            XCTAssertEqual(int4.values[i], truth[i], accuracy: step4 * 1.001 + abs(truth[i]) * 0x1p-22, "int4 element \(i)")
            sumError4 += Double(int4.values[i] - truth[i])
        }
        XCTAssertLessThan(abs(sumError4 / Double(truth.count)), Double(step4) * 0.03)
        XCTAssertLessThan(Double(int4Bytes), Double(plainBytes) * 0.135, "int4 \(int4Bytes) vs float32 \(plainBytes)")
        // The FitRes carried 2 bytes (fp16) and 1 byte (int8) per parameter instead of 4.
        XCTAssertLessThan(Double(fp16Bytes), Double(plainBytes) * 0.51, "fp16 \(fp16Bytes) vs float32 \(plainBytes)")
        XCTAssertLessThan(Double(int8Bytes), Double(plainBytes) * 0.26, "int8 \(int8Bytes) vs float32 \(plainBytes)")
    }

    /// A raw peer that joined the server and answers the next FitIns with `answer(fitIns)`; returns what fit threw.
    private func fitAgainstRawPeer(_ mode: UpdateCompression, model: Parameters,
                                   _ answer: @escaping @Sendable (FitIns) throws -> ClientMessage) async throws -> any Error {
        let manager = TestManager()
        let (server, port) = try await server(manager, mode)
        defer { Task { await server.stop() } }
        let peer = try RawPeer(port: port)
        defer { peer.close() }
        guard case .welcome(let w)? = try peer.handshake(id: "raw") else { XCTFail("no Welcome"); throw WireError.notReady("no Welcome") }
        XCTAssertEqual(w.updateCompression, mode, "the server announces its encoding")
        let proxy = try await manager.waitForProxy("raw")
        let fit = Task { try await proxy.fit(FitIns(round: 1, parameters: model), timeout: .seconds(20)) }
        guard case .fit(let ins)? = try peer.next() else { XCTFail("no FitIns"); throw WireError.notReady("no FitIns") }
        try peer.send(WireEncoder.frame(try answer(ins)))
        do {
            _ = try await fit.value
            XCTFail("fit accepted a bad update")
            return WireError.notReady("accepted")
        } catch { return error }
    }

    func testHostileAndMismatchedUpdatesAreRefused() async throws {
        let model = try testModel(count: 100)
        let counts = model.layout.map(\.count)  // [90, 10]
        func update(_ enc: UpdateCompression, _ tensors: [CompressedTensor]) -> @Sendable (FitIns) throws -> ClientMessage {
            { ins in .compressedFitRes(FitRes(round: ins.round, parameters: Parameters(), numExamples: 1),
                                       update: CompressedUpdate(encoding: enc, tensors: tensors)) }
        }
        let good = counts.map { CompressedTensor(count: $0, scale: 0.5, data: [UInt8](repeating: 1, count: $0)) }
        var cases: [(String, UpdateCompression, @Sendable (FitIns) throws -> ClientMessage)] = []
        for scale in [Float.nan, .infinity, -0.5] {
            var t = good; t[1].scale = scale
            cases.append(("scale", .int8, update(.int8, t)))
        }
        var wrongCount = good; wrongCount[0] = CompressedTensor(count: 91, scale: 0.5, data: [UInt8](repeating: 1, count: 91))
        cases.append(("declares 91 elements", .int8, update(.int8, wrongCount)))
        var short = good; short[1].data.removeLast()
        cases.append(("9 bytes for 10 elements", .int8, update(.int8, short)))
        cases.append(("1 tensors", .int8, update(.int8, [good[0]])))
        cases.append(("announced --update-compression int8", .int8, update(.fp16, counts.map { CompressedTensor(count: $0, scale: 0, data: [UInt8](repeating: 0, count: 2 * $0)) })))
        var minusEight = counts.map { CompressedTensor(count: $0, scale: 0.5, data: [UInt8](repeating: 0x11, count: $0 / 2)) }
        minusEight[1].data[4] = 0x18
        cases.append(("element 8 is -8", .int4, update(.int4, minusEight)))
        cases.append(("declares 91 elements", .int4, update(.int4, [CompressedTensor(count: 91, scale: 1, data: [UInt8](repeating: 0, count: 46)), minusEight[1]])))
        let topk = UpdateCompression.topk(fraction: 0.1, errorFeedback: true)  // at most 9 of w, 1 of b
        let bOne = CompressedTensor(count: 10, scale: 0, data: topkData([0], [1]))
        cases.append(("keeps 10 of 90 elements", topk, update(topk, [CompressedTensor(count: 90, scale: 0, data: topkData(Array(0 ..< 10), [Float](repeating: 1, count: 10))), bOne])))
        cases.append(("strictly increasing", topk, update(topk, [CompressedTensor(count: 90, scale: 0, data: topkData([7, 2], [1, 1])), bOne])))
        cases.append(("declares 2 kept values but carries 12 bytes", topk, update(topk, [CompressedTensor(count: 90, scale: 0, data: topkData([7], [1], declared: 2)), bOne])))
        cases.append(("sent float32 weights", .int8, { ins in .fitRes(FitRes(round: ins.round, parameters: ins.parameters, numExamples: 1)) }))
        for (expected, mode, answer) in cases {
            let error = try await fitAgainstRawPeer(mode, model: model, answer)
            XCTAssertTrue("\(error)".contains(expected), "expected \"\(expected)\" in: \(error)")
        }
    }

    func testOlderClientGetsTheVersionRefusal() async throws {
        let manager = TestManager()
        let (server, port) = try await server(manager, .int8)
        defer { Task { await server.stop() } }
        let peer = try RawPeer(port: port)
        defer { peer.close() }
        guard case .refusal(let r)? = try peer.handshake(id: "old", version: 2) else { return XCTFail("not refused") }
        XCTAssertEqual(r.reason, .versionMismatch)
        XCTAssertTrue(r.message.contains("--update-compression"), r.message)
        // A version-3 client knows fp16 and int8 but not int4: told to upgrade, not sent an
        // encoding it would misread.
        let peer3 = try RawPeer(port: port)
        defer { peer3.close() }
        guard case .refusal(let r3)? = try peer3.handshake(id: "v3", version: 3) else { return XCTFail("version 3 not refused") }
        XCTAssertEqual(r3.reason, .versionMismatch)
        XCTAssertTrue(r3.message.contains("version 4 the int4 and top-k update encodings") && r3.message.contains("upgrade flwr"), r3.message)
    }

    func testCompressedFitResCodecRefusesAmbiguousFrames() throws {
        // update_encoding INT8 with float32 parameters as well: refused, whatever the update says.
        let tensor = PB.tensor(name: "w", shape: [1], data: [0, 0, 0x80, 0x3F])
        let both = PB.bytes(3, PB.field(2, 1) + PB.bytes(3, PB.bytes(1, tensor)) + PB.field(6, 2)
                               + PB.bytes(7, PB.field(1, 1) + PB.bytes(3, [1])))
        XCTAssertThrowsError(try WireDecoder.clientMessage(both)) { XCTAssertTrue("\($0)".contains("both"), "\($0)") }
        // An update without an encoding, and an encoding this flwr does not know.
        let noEncoding = PB.bytes(3, PB.field(2, 1) + PB.bytes(7, PB.field(1, 1) + PB.bytes(3, [1])))
        XCTAssertThrowsError(try WireDecoder.clientMessage(noEncoding)) { XCTAssertTrue("\($0)".contains("NONE"), "\($0)") }
        let unknown = PB.bytes(3, PB.field(2, 1) + PB.field(6, 9))
        XCTAssertThrowsError(try WireDecoder.clientMessage(unknown)) { XCTAssertTrue("\($0)".contains("update encoding"), "\($0)") }
        // A well-formed one round-trips field for field.
        let update = CompressedUpdate(encoding: .int8, tensors: [CompressedTensor(count: 2, scale: 0.25, data: [1, 0xFF])])
        let frame = try WireEncoder.frame(.compressedFitRes(FitRes(round: 4, parameters: Parameters(), numExamples: 9, metrics: ["m": .int(1)]), update: update))
        var reader = EmbeddedFrameReader(limit: 1 << 20)
        guard case .compressedFitRes(let res, let back) = try WireDecoder.clientMessage(try reader.feed(frame)[0], limit: 1 << 20) else {
            return XCTFail("not a compressed FitRes")
        }
        XCTAssertEqual(back, update)
        XCTAssertEqual(res.round, 4)
        XCTAssertEqual(res.numExamples, 9)
        XCTAssertEqual(res.metrics["m"], .int(1))
    }

    func testTopKErrorFeedbackCarriesAcrossAReconnect() async throws {
        // DeltaClient's update is ±0.06 on 2 of every 7 coordinates (about 257 of w's 900 and 28
        // of b's 100), smaller elsewhere. topk:0.1 sends 90 of w and 10 of b. With error feedback,
        // round 2 (after a reconnect: a new session of the same client process) sends 90 + 10
        // coordinates that round 1 held back, each now carrying two rounds' worth (±0.12); without,
        // round 2 sends the same ±0.06 coordinates as round 1.
        let model = try testModel(count: 1000)
        for errorFeedback in [true, false] {
            let mode = UpdateCompression.topk(fraction: 0.1, errorFeedback: errorFeedback)
            let manager = TestManager()
            let (server, port) = try await server(manager, mode)
            var config = clientConfig(port, id: "topk")
            config.acceptCompression = false
            let cfg = config
            let run = Task { try await WireClient.run(config: cfg, client: DeltaClient(), logger: quietLogger) }
            defer { run.cancel() }
            let first = try await manager.waitForProxy("topk") as! WireClientProxy
            let before = first.bytesIn
            let r1 = try await first.fit(FitIns(round: 1, parameters: model), timeout: .seconds(30))
            let bytes1 = first.bytesIn - before
            await first.reconnect(seconds: 0, reason: "rebalancing")
            try await manager.wait { ($0.proxy("topk") as? WireClientProxy).map { $0 !== first } ?? false }
            let second = try await manager.waitForProxy("topk") as! WireClientProxy
            let r2 = try await second.fit(FitIns(round: 2, parameters: model), timeout: .seconds(30))
            await second.finish(roundsCompleted: 2, reason: "done")
            _ = try await run.value
            await server.stop()

            func sent(_ res: FitRes) -> [Int: Float] {
                var out: [Int: Float] = [:]
                for i in model.values.indices where res.parameters.values[i] != model.values[i] {
                    out[i] = res.parameters.values[i] - model.values[i]
                }
                return out
            }
            let s1 = sent(r1), s2 = sent(r2)
            XCTAssertEqual(s1.keys.filter { $0 < 900 }.count, 90, "ef \(errorFeedback): round 1 sends 90 of w")
            XCTAssertEqual(s1.keys.filter { $0 >= 900 }.count, 10, "ef \(errorFeedback): round 1 sends 10 of b")
            for (i, u) in s1 { XCTAssertEqual(u, DeltaClient.delta(i), accuracy: 1e-5, "round 1 element \(i)") }
            XCTAssertEqual(s2.count, 100)
            if errorFeedback {
                XCTAssertTrue(Set(s1.keys).isDisjoint(with: s2.keys), "round 2 sends what round 1 held back")
                for (i, u) in s2 { XCTAssertEqual(u, 2 * DeltaClient.delta(i), accuracy: 2e-5, "round 2 element \(i): two rounds' worth") }
            } else {
                XCTAssertEqual(Set(s1.keys), Set(s2.keys), "without error feedback the same coordinates win again")
                for (i, u) in s2 { XCTAssertEqual(u, DeltaClient.delta(i), accuracy: 1e-5, "round 2 element \(i)") }
            }
            // 100 × 8 bytes + two 4-byte counts instead of 4,000 bytes of float32.
            XCTAssertLessThan(bytes1, 1_100, "ef \(errorFeedback): FitRes of \(bytes1) bytes")
        }
    }

    /// Two fits of DeltaClient from an all-zero 90 + 10 model under `spec`, over a real socket:
    /// both results as the server decoded them and round 2's FitRes bytes.
    private func twoZeroModelRounds(_ spec: String, id: String) async throws -> (FitRes, FitRes, UInt64) {
        let model = try Parameters(shapes: [("w", [90]), ("b", [10])], values: [Float](repeating: 0, count: 100))
        let mode = try UpdateCompression(parsing: spec)
        let manager = TestManager()
        let (server, port) = try await server(manager, mode)
        var config = clientConfig(port, id: id)
        config.acceptCompression = false
        let cfg = config
        let run = Task { try await WireClient.run(config: cfg, client: DeltaClient(), logger: quietLogger) }
        defer { run.cancel() }
        let proxy = try await manager.waitForProxy(id) as! WireClientProxy
        let r1 = try await proxy.fit(FitIns(round: 1, parameters: model), timeout: .seconds(30))
        let before = proxy.bytesIn
        let r2 = try await proxy.fit(FitIns(round: 2, parameters: model), timeout: .seconds(30))
        let bytes2 = proxy.bytesIn - before
        await proxy.finish(roundsCompleted: 2, reason: "done")
        _ = try await run.value
        await server.stop()
        return (r1, r2, bytes2)
    }

    func testGlobalWarmupVarintTopKOverTheWire() async throws {
        // Zero weights, so DeltaClient's update is exactly ((i mod 7) − 3) / 50: |0.06| where
        // i mod 7 is 0 or 6, |0.04| where it is 1 or 5. topk:0.1,global,warmup=1,varint:
        // round 1 sends 0.1^(1/2) ≈ 0.316 → ⌈28.5⌉ + ⌈3.2⌉ = 33 coordinates over both tensors: all
        // 29 of |0.06| (25 of w, 90 91 97 98 of b), then the 4 lowest of |0.04|: 1 5 8 12.
        // Round 2 sends 9 + 1 = 10: with error feedback the held-back |0.04| coordinates carry
        // 0.08 and win, lowest first (15 19 22 26 29 33 36 40 43 47): all in w, none of b.
        let (r1, r2, bytes2) = try await twoZeroModelRounds("topk:0.1,global,warmup=1,varint", id: "gwv")

        let big = (0 ..< 100).filter { $0 % 7 == 0 || $0 % 7 == 6 }
        XCTAssertEqual(big.count, 29)
        let s1 = Set(r1.parameters.values.indices.filter { r1.parameters.values[$0] != 0 })
        XCTAssertEqual(s1, Set(big + [1, 5, 8, 12]))
        for i in s1 { XCTAssertEqual(r1.parameters.values[i], DeltaClient.delta(i), "round 1 element \(i)") }
        let s2 = r2.parameters.values.indices.filter { r2.parameters.values[$0] != 0 }
        XCTAssertEqual(s2, [15, 19, 22, 26, 29, 33, 36, 40, 43, 47])
        for i in s2 { XCTAssertEqual(r2.parameters.values[i], 2 * DeltaClient.delta(i), "round 2 element \(i): two rounds' worth") }
        // Round 2: 10 values (40 bytes), 10 one-byte gaps and two counts: under 100 bytes of
        // update in a FitRes frame, where u32 indices would take 40 more.
        XCTAssertLessThan(bytes2, 200, "FitRes of \(bytes2) bytes")
    }

    func testHostileGlobalWarmupAndVarintUpdatesAreRefused() async throws {
        let model = try testModel(count: 100)  // w 90, b 10
        func update(_ enc: UpdateCompression, _ tensors: [CompressedTensor]) -> @Sendable (FitIns) throws -> ClientMessage {
            { ins in .compressedFitRes(FitRes(round: ins.round, parameters: Parameters(), numExamples: 1),
                                       update: CompressedUpdate(encoding: enc, tensors: tensors)) }
        }
        let global = try UpdateCompression(parsing: "topk:0.1,global")  // 9 + 1 = 10 over the whole update
        let warm = try UpdateCompression(parsing: "topk:0.1,warmup=1")  // round 1: at most 29 of w, 4 of b
        let varint = try UpdateCompression(parsing: "topk:0.1,varint")
        let ones = { (n: Int) in [Float](repeating: 1, count: n) }
        var cases: [(String, UpdateCompression, @Sendable (FitIns) throws -> ClientMessage)] = []
        cases.append(("tensor b: top-k update keeps 2 of 10 elements; the announced fraction allows at most 1", global,
                      update(global, [CompressedTensor(count: 90, scale: 0, data: topkData(Array(0 ..< 9), ones(9))),
                                      CompressedTensor(count: 10, scale: 0, data: topkData([0, 1], ones(2)))])))
        cases.append(("keeps 30 of 90 elements; the announced fraction allows at most 29", warm,
                      update(warm, [CompressedTensor(count: 90, scale: 0, data: topkData(Array(0 ..< 30), ones(30))),
                                    CompressedTensor(count: 10, scale: 0, data: topkData([0], ones(1)))])))
        let varintEncoding = UpdateCompression.topk(fraction: 1, errorFeedback: true, varintIndices: true)
        cases.append(("not in its shortest form", varint,
                      update(varintEncoding, [CompressedTensor(count: 90, scale: 0, data: topkVarintData(1, indexBytes: [0x80, 0x00], ones(1))),
                                              CompressedTensor(count: 10, scale: 0, data: topkVarintData(0, indexBytes: [], []))])))
        cases.append(("index 90 (entry 1) is out of range", varint,
                      update(varintEncoding, [CompressedTensor(count: 90, scale: 0, data: topkVarintData(2, indexBytes: [0x00, 0x59], ones(2))),
                                              CompressedTensor(count: 10, scale: 0, data: topkVarintData(0, indexBytes: [], []))])))
        // A server announcing u32 indices refuses varint ones.
        let plain = UpdateCompression.topk(fraction: 0.1, errorFeedback: true)
        cases.append(("sent a topk-varint update although the server announced", plain,
                      update(varintEncoding, [CompressedTensor(count: 90, scale: 0, data: topkVarintData(0, indexBytes: [], [])),
                                              CompressedTensor(count: 10, scale: 0, data: topkVarintData(0, indexBytes: [], []))])))
        for (expected, mode, answer) in cases {
            let error = try await fitAgainstRawPeer(mode, model: model, answer)
            XCTAssertTrue("\(error)".contains(expected), "expected \"\(expected)\" in: \(error)")
        }
    }

    func testVarintServerAcceptsU32IndicesFromAClientThatIgnoresTheFlag() async throws {
        // A client that does not read Welcome.topk_varint_indices answers with UPDATE_ENCODING_TOPK.
        let model = try testModel(count: 100)
        let manager = TestManager()
        let (server, port) = try await server(manager, try UpdateCompression(parsing: "topk:0.1,varint"))
        defer { Task { await server.stop() } }
        let peer = try RawPeer(port: port)
        defer { peer.close() }
        guard case .welcome? = try peer.handshake(id: "older") else { return XCTFail("no Welcome") }
        let proxy = try await manager.waitForProxy("older")
        let fit = Task { try await proxy.fit(FitIns(round: 1, parameters: model), timeout: .seconds(20)) }
        guard case .fit(let ins)? = try peer.next() else { return XCTFail("no FitIns") }
        let update = CompressedUpdate(encoding: .topk(fraction: 1, errorFeedback: true),
                                      tensors: [CompressedTensor(count: 90, scale: 0, data: topkData([3, 80], [0.5, -0.25])),
                                                CompressedTensor(count: 10, scale: 0, data: topkData([9], [2]))])
        try peer.send(WireEncoder.frame(.compressedFitRes(FitRes(round: ins.round, parameters: Parameters(), numExamples: 1), update: update)))
        let res = try await fit.value
        var expected = model.values
        expected[3] += 0.5; expected[80] -= 0.25; expected[99] += 2
        XCTAssertEqual(res.parameters.values, expected)
    }

    func testGlobalWarmupInt8TopKOverTheWire() async throws {
        // As testGlobalWarmupVarintTopKOverTheWire, with int8 values: the Welcome's flag reaches the
        // client, which sends UPDATE_ENCODING_TOPK_INT8. The same coordinates win (round 1: the 29
        // of |0.06| and 1 5 8 12; round 2, with error feedback, 15 19 … 47 carrying 0.08); each
        // value arrives within one step (the tensor's largest kept |value| / 127) of the float32
        // one, in one byte instead of four.
        let (r1, r2, bytes2) = try await twoZeroModelRounds("topk:0.1,global,warmup=1,int8", id: "gwi")

        let big = (0 ..< 100).filter { $0 % 7 == 0 || $0 % 7 == 6 }
        let s1 = Set(r1.parameters.values.indices.filter { r1.parameters.values[$0] != 0 })
        XCTAssertEqual(s1, Set(big + [1, 5, 8, 12]))
        for i in s1 { XCTAssertEqual(r1.parameters.values[i], DeltaClient.delta(i), accuracy: 0.06 / 127 * 1.001, "round 1 element \(i)") }
        let s2 = r2.parameters.values.indices.filter { r2.parameters.values[$0] != 0 }
        XCTAssertEqual(s2, [15, 19, 22, 26, 29, 33, 36, 40, 43, 47])
        // Round 2's coordinates were all held back in round 1: ±0.08 exactly, rounded to a step of 0.08 / 127.
        for i in s2 { XCTAssertEqual(r2.parameters.values[i], 2 * DeltaClient.delta(i), accuracy: 0.08 / 127 * 1.001, "round 2 element \(i)") }
        // Round 2: 10 one-byte values, 10 one-byte gaps, two counts and w's 9-byte scale: a 64-byte
        // FitRes frame here, where float32 values would take 30 bytes more (and no scale).
        XCTAssertLessThanOrEqual(bytes2, 70, "FitRes of \(bytes2) bytes")
    }

    func testHostileAndMismatchedInt8TopKUpdatesAreRefused() async throws {
        let model = try testModel(count: 100)  // w 90, b 10
        func update(_ enc: UpdateCompression, _ tensors: [CompressedTensor]) -> @Sendable (FitIns) throws -> ClientMessage {
            { ins in .compressedFitRes(FitRes(round: ins.round, parameters: Parameters(), numExamples: 1),
                                       update: CompressedUpdate(encoding: enc, tensors: tensors)) }
        }
        let int8 = try UpdateCompression(parsing: "topk:0.1,int8")  // at most 9 of w, 1 of b
        let int8Encoding = UpdateCompression.topk(fraction: 1, errorFeedback: true, varintIndices: true, int8Values: true)
        let emptyB = CompressedTensor(count: 10, scale: 0, data: topkInt8Data(0, indexBytes: [], []))
        var cases: [(String, UpdateCompression, @Sendable (FitIns) throws -> ClientMessage)] = []
        for scale in [Float.nan, .infinity, -1] {
            cases.append(("top-k int8 scale", int8, update(int8Encoding, [CompressedTensor(count: 90, scale: scale, data: topkInt8Data(1, indexBytes: [0], [1])), emptyB])))
        }
        cases.append(("declares 3 kept values but carries 9 bytes (needs at least 10)", int8,
                      update(int8Encoding, [CompressedTensor(count: 90, scale: 1, data: topkInt8Data(3, indexBytes: [0, 1, 2], [1, 1])), emptyB])))
        cases.append(("keeps 10 of 90 elements; the announced fraction allows at most 9", int8,
                      update(int8Encoding, [CompressedTensor(count: 90, scale: 1, data: topkInt8Data(10, indexBytes: [UInt8](repeating: 0, count: 10), [Int8](repeating: 1, count: 10))), emptyB])))
        cases.append(("index 90 (entry 1) is out of range", int8,
                      update(int8Encoding, [CompressedTensor(count: 90, scale: 1, data: topkInt8Data(2, indexBytes: [0x00, 0x59], [1, 1])), emptyB])))
        cases.append(("int8 value 0 is -128", int8,
                      update(int8Encoding, [CompressedTensor(count: 90, scale: 1, data: topkInt8Data(1, indexBytes: [0x03], [-128])), emptyB])))
        // A server announcing float32 values refuses int8 ones.
        let varint = try UpdateCompression(parsing: "topk:0.1,varint")
        cases.append(("sent a topk-int8 update although the server announced", varint,
                      update(int8Encoding, [CompressedTensor(count: 90, scale: 0, data: topkInt8Data(0, indexBytes: [], [])), emptyB])))
        for (expected, mode, answer) in cases {
            let error = try await fitAgainstRawPeer(mode, model: model, answer)
            XCTAssertTrue("\(error)".contains(expected), "expected \"\(expected)\" in: \(error)")
        }
    }

    func testInt8ServerAcceptsFloatValuesFromAClientThatIgnoresTheFlag() async throws {
        // A client that reads Welcome.topk_varint_indices but not topk_int8_values answers with
        // UPDATE_ENCODING_TOPK_VARINT (float32 values), one that reads neither with UPDATE_ENCODING_TOPK.
        let model = try testModel(count: 100)
        for older in [UpdateCompression.topk(fraction: 1, errorFeedback: true, varintIndices: true), .topk(fraction: 1, errorFeedback: true)] {
            let manager = TestManager()
            let (server, port) = try await server(manager, try UpdateCompression(parsing: "topk:0.1,int8"))
            defer { Task { await server.stop() } }
            let peer = try RawPeer(port: port)
            defer { peer.close() }
            guard case .welcome(let w)? = try peer.handshake(id: "older") else { return XCTFail("no Welcome") }
            XCTAssertEqual(w.updateCompression, try UpdateCompression(parsing: "topk:0.1,int8"))
            let proxy = try await manager.waitForProxy("older")
            let fit = Task { try await proxy.fit(FitIns(round: 1, parameters: model), timeout: .seconds(20)) }
            guard case .fit(let ins)? = try peer.next() else { return XCTFail("no FitIns") }
            let varint = older.encodingName == "topk-varint"
            let tensors = varint
                ? [CompressedTensor(count: 90, scale: 0, data: topkVarintData(2, indexBytes: [3, 76], [0.5, -0.25])),
                   CompressedTensor(count: 10, scale: 0, data: topkVarintData(1, indexBytes: [9], [2]))]
                : [CompressedTensor(count: 90, scale: 0, data: topkData([3, 80], [0.5, -0.25])),
                   CompressedTensor(count: 10, scale: 0, data: topkData([9], [2]))]
            try peer.send(WireEncoder.frame(.compressedFitRes(FitRes(round: ins.round, parameters: Parameters(), numExamples: 1),
                                                              update: CompressedUpdate(encoding: older, tensors: tensors))))
            let res = try await fit.value
            var expected = model.values
            expected[3] += 0.5; expected[80] -= 0.25; expected[99] += 2
            XCTAssertEqual(res.parameters.values, expected, older.encodingName)
        }
    }
}
