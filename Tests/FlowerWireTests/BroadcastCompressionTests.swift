// --broadcast-compression fp16: FitIns/EvaluateIns parameters as DTYPE_FLOAT16, checked against
// hand-computed binary16 values; float16 anywhere else, of the wrong length or not finite is
// refused; over loopback a client trains from the rounded model while the server adds compressed
// updates onto its own float32 weights.
import FlowerBase
import FlowerCore
@testable import FlowerWire
@testable import FlowerWireCodec
import TestSupport
import XCTest

final class BroadcastCompressionTests: XCTestCase {
    private func decodeServer(_ frame: [UInt8]) throws -> ServerMessage {
        var reader = EmbeddedFrameReader(limit: 1 << 24)
        let frames = try reader.feed(frame)
        XCTAssertEqual(frames.count, 1)
        return try WireDecoder.serverMessage(frames[0], limit: 1 << 24)
    }

    func testFP16BroadcastRoundsToNearestAndHalvesTheFrame() throws {
        // 1/3 → 0x3555 = 0.333251953125; 0.1 → 0x2E66 = 0.0999755859375; 1 + 2^-11 ties to even 1;
        // 65504 is binary16's largest finite value; 2^-24 its smallest subnormal.
        let model = try Parameters(shapes: [("w", [2, 2]), ("b", [3])], values: [1.0 / 3, 0.1, 1 + 0x1p-11, -2, 65504, 0x1p-24, 0])
        let halves: [Float] = [0.333251953125, 0.0999755859375, 1, -2, 65504, 0x1p-24, 0]
        let fit = try WireEncoder.frame(.fit(FitIns(round: 3, parameters: model, config: ["lr": .double(0.1)])), broadcast: .fp16)
        guard case .fit(let ins) = try decodeServer(fit) else { return XCTFail("not a FitIns") }
        XCTAssertEqual(ins.round, 3)
        XCTAssertEqual(ins.parameters.layout, model.layout)
        XCTAssertEqual(ins.parameters.values, halves)
        XCTAssertEqual(ins.config["lr"], Scalar.double(0.1))
        let evaluate = try WireEncoder.frame(.evaluate(EvaluateIns(round: 3, parameters: model)), broadcast: .fp16)
        guard case .evaluate(let e) = try decodeServer(evaluate) else { return XCTFail("not an EvaluateIns") }
        XCTAssertEqual(e.parameters.values, halves)
        // float32 stays bit-exact, and a large model's frame halves.
        let plain = try WireEncoder.frame(.fit(FitIns(round: 3, parameters: model)))
        guard case .fit(let same) = try decodeServer(plain) else { return XCTFail("not a FitIns") }
        XCTAssertEqual(same.parameters, model)
        let big = try testModel(count: 100_000)
        let big32 = try WireEncoder.frame(.fit(FitIns(round: 1, parameters: big))).count
        let big16 = try WireEncoder.frame(.fit(FitIns(round: 1, parameters: big)), broadcast: .fp16).count
        XCTAssertEqual(Double(big16) / Double(big32), 0.5, accuracy: 0.001, "\(big16) vs \(big32) bytes")
    }

    func testWeightsBeyondFP16AreRefusedOnEncode() throws {
        let model = try Parameters(shapes: [("fc.weight", [2])], values: [1, 70_000])
        XCTAssertThrowsError(try WireEncoder.frame(.fit(FitIns(round: 1, parameters: model)), broadcast: .fp16)) { e in
            XCTAssertTrue("\(e)".contains("fc.weight") && "\(e)".contains("--broadcast-compression none"), "\(e)")
        }
    }

    func testHostileFloat16TensorsAreRefused() throws {
        func decode(_ payload: [UInt8], client: Bool) throws {
            if client { _ = try WireDecoder.clientMessage(payload) } else { _ = try WireDecoder.serverMessage(payload) }
        }
        func refused(_ payload: [UInt8], client: Bool = false, _ fragment: String, line: UInt = #line) {
            XCTAssertThrowsError(try decode(payload, client: client), line: line) { error in
                guard case .badParameters(let why) = error as? WireError else { return XCTFail("got \(error)", line: line) }
                XCTAssertTrue(why.contains(fragment), "\(why) lacks \(fragment)", line: line)
            }
        }
        // A good one first: 0x3C00 = 1, 0xC000 = -2.
        guard case .fit(let ins) = try WireDecoder.serverMessage(PB.fitIns([PB.tensor(name: "w", shape: [2], dtype: 1, data: [0, 0x3C, 0, 0xC0])])) else {
            return XCTFail("not a FitIns")
        }
        XCTAssertEqual(ins.parameters.values, [1, -2])
        refused(PB.fitIns([PB.tensor(name: "w", shape: [2], dtype: 1, data: [0, 0x3C, 0])]), "needs 2 float16 (4 bytes) but carries 3 bytes")
        refused(PB.fitIns([PB.tensor(name: "w", shape: [2], dtype: 1, data: [0, 0x3C, 0, 0x7C])]), "float16 element 1 is not finite (0x7c00)")
        refused(PB.fitIns([PB.tensor(name: "w", shape: [1], dtype: 1, data: [0, 0x7E])]), "float16 element 0 is not finite")
        // A client's FitRes or ParametersRes may not carry float16 weights.
        let fitRes = PB.bytes(3, PB.field(2, 1) + PB.bytes(3, PB.bytes(1, PB.tensor(name: "w", shape: [1], dtype: 1, data: [0, 0x3C]))))
        refused(fitRes, client: true, "only FitIns and EvaluateIns")
        let parametersRes = PB.bytes(2, PB.bytes(2, PB.bytes(1, PB.tensor(name: "w", shape: [1], dtype: 1, data: [0, 0x3C]))))
        refused(parametersRes, client: true, "only FitIns and EvaluateIns")
    }

    /// One fit over loopback with the model broadcast as fp16 and updates encoded as `updates`.
    private func fit(updates: UpdateCompression, model: Parameters) async throws -> (FitRes, UInt64) {
        let manager = TestManager()
        var config = WireServerConfig(host: "127.0.0.1", port: 0, maxFrameBytes: 1 << 22)
        config.updateCompression = updates
        config.broadcastCompression = .fp16
        config.compressionAllowed = false
        let server = WireServer(config: config, manager: manager, logger: quietLogger)
        let port = try await server.start()
        var client = clientConfig(port, id: "b-\(updates.encodingName)")
        client.acceptCompression = false
        let cfg = client
        let run = Task { try await WireClient.run(config: cfg, client: DeltaClient(), logger: quietLogger) }
        defer { run.cancel() }
        let proxy = try await manager.waitForProxy("b-\(updates.encodingName)") as! WireClientProxy
        let before = proxy.bytesOut
        let res = try await proxy.fit(FitIns(round: 1, parameters: model), timeout: .seconds(30))
        let sent = proxy.bytesOut - before
        await proxy.finish(roundsCompleted: 1, reason: "done")
        _ = try await run.value
        await server.stop()
        return (res, sent)
    }

    func testClientsTrainFromTheRoundedModelAndTheServerKeepsItsOwn() async throws {
        // Weights k/3 are not binary16 values, so the rounding shows.
        let n = 10_000
        let model = try Parameters(shapes: [("w", [9_000]), ("b", [1_000])], values: (0 ..< n).map { Float($0 % 97 - 48) / 3 })
        let rounded = model.values.map { Float(Float16($0)) }
        XCTAssertGreaterThan(zip(rounded, model.values).filter { $0 != $1 }.count, n / 2)
        // Float32 weights back: the client's weights are the rounded model plus its delta.
        let (plain, sent) = try await fit(updates: .none, model: model)
        for i in 0 ..< n {
            XCTAssertEqual(plain.parameters.values[i], rounded[i] + DeltaClient.delta(i), "element \(i)")
        }
        XCTAssertLessThan(sent, UInt64(2 * n + 1_000), "the FitIns carried 2 bytes per weight: \(sent) bytes")
        XCTAssertGreaterThan(sent, UInt64(2 * n))
        // An fp16 update is formed against the rounded model and added onto the server's float32 one.
        let (viaUpdate, _) = try await fit(updates: .fp16, model: model)
        for i in 0 ..< n {
            let truth = model.values[i] + DeltaClient.delta(i)
            // The delta (|d| <= 0.06) in binary16 is off by at most 2^-16, and forming it against the
            // rounded model costs at most 2^-20; had the server added it onto the rounded model
            // instead, weights near 16 would be off by up to 2^-8.
            XCTAssertEqual(viaUpdate.parameters.values[i], truth, accuracy: 0x1p-13 + abs(truth) * 0x1p-22, "element \(i)")
        }
    }
}
