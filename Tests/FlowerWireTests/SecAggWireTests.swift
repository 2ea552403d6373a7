// Secure aggregation on the wire (protocol version 2): the eight messages through the codec and its
// limits, and a whole SecAgg+ round between a WireServer and WireClients over loopback sockets.
import FlowerCore
import FlowerTLS
@testable import FlowerWire
@testable import FlowerWireCodec
import Foundation
import TestSupport
import XCTest

/// Trains by adding a fixed delta to the global model: client i adds (i + 1)/8 to every value.
private struct ShiftClient: Client {
    let shift: Float
    let numExamples: Int
    func getParameters(_ ins: GetParametersIns) async throws -> ParametersRes { ParametersRes(parameters: try testModel()) }
    func fit(_ ins: FitIns) async throws -> FitRes {
        var p = ins.parameters
        for i in p.values.indices { p.values[i] += shift }
        return FitRes(round: ins.round, parameters: p, numExamples: numExamples, metrics: ["shift": .double(Double(shift))])
    }
    func evaluate(_ ins: EvaluateIns) async throws -> EvaluateRes { EvaluateRes(round: ins.round, loss: 0, numExamples: 1) }
}

final class SecAggWireTests: XCTestCase {
    private func roundTrip(_ m: ServerMessage) throws -> ServerMessage {
        var d = EmbeddedFrameReader(limit: 1 << 24)
        let frames = try d.feed(try WireEncoder.frame(m))
        XCTAssertEqual(frames.count, 1)
        return try WireDecoder.serverMessage(frames[0], limit: 1 << 24)
    }

    private func roundTrip(_ m: ClientMessage) throws -> ClientMessage {
        var d = EmbeddedFrameReader(limit: 1 << 24)
        let frames = try d.feed(try WireEncoder.frame(m))
        XCTAssertEqual(frames.count, 1)
        return try WireDecoder.clientMessage(frames[0], limit: 1 << 24)
    }

    private func keys(_ sender: UInt32) -> SecAggPublicKeys {
        SecAggPublicKeys(round: 7 << 32 | 99, sender: sender, encryptionKey: (0 ..< 32).map { UInt8($0) ^ UInt8(truncatingIfNeeded: sender) },
                         maskKey: (0 ..< 32).map { UInt8(255 - $0) })
    }

    private func share(_ sender: UInt32, _ receiver: UInt32) -> SecAggEncryptedShare {
        SecAggEncryptedShare(sender: sender, receiver: receiver, ciphertext: (0 ..< 108).map { UInt8(($0 * 7 + Int(sender)) & 255) })
    }

    /// Every field of the eight messages survives encode → decode unchanged.
    func testEveryMessageRoundTrips() throws {
        let parameters = SecAggParameters(numShares: 8, reconstructionThreshold: 5, clippingRange: 0.75,
                                          quantizationRange: 1 << 18, modulusRange: 1 << 32, maxWeight: 1000)
        let setup = SecAggSetup(round: 3 << 32 | 17, clientIndex: 4, numClients: 10, vectorLength: 390_410, parameters: parameters)
        guard case .secAggSetup(let s) = try roundTrip(.secAggSetup(setup)) else { return XCTFail("not SecAggSetup") }
        XCTAssertEqual(s, setup)
        let nk = SecAggNeighbourKeys(round: 5, receiver: 2, neighbours: [keys(0), keys(1), keys(3)])
        guard case .secAggNeighbourKeys(let n) = try roundTrip(.secAggNeighbourKeys(nk)) else { return XCTFail("not SecAggNeighbourKeys") }
        XCTAssertEqual(n, nk)
        let fs = SecAggForwardedShares(round: 5, receiver: 2, shares: [share(0, 2), share(3, 2)])
        guard case .secAggForwardedShares(let f) = try roundTrip(.secAggForwardedShares(fs)) else { return XCTFail("not SecAggForwardedShares") }
        XCTAssertEqual(f, fs)
        let ur = SecAggUnmaskRequest(round: 5, receiver: 2, seedSharesOf: [0, 3, 0xFFFF_FFFE], keySharesOf: [1])
        guard case .secAggUnmaskRequest(let u) = try roundTrip(.secAggUnmaskRequest(ur)) else { return XCTFail("not SecAggUnmaskRequest") }
        XCTAssertEqual(u, ur)

        guard case .secAggPublicKeys(let k) = try roundTrip(.secAggPublicKeys(keys(9))) else { return XCTFail("not SecAggPublicKeys") }
        XCTAssertEqual(k, keys(9))
        let sk = SecAggShareKeys(round: 5, sender: 2, shares: [share(2, 0), share(2, 1), share(2, 3)])
        guard case .secAggShareKeys(let sh) = try roundTrip(.secAggShareKeys(sk)) else { return XCTFail("not SecAggShareKeys") }
        XCTAssertEqual(sh, sk)
        let mi = SecAggMaskedInput(round: 5, sender: 2, vector: [0, 1, 0xDEAD_BEEF, .max])
        guard case .secAggMaskedInput(let m, let metrics) = try roundTrip(.secAggMaskedInput(mi, metrics: ["loss": .double(0.5)])) else {
            return XCTFail("not SecAggMaskedInput")
        }
        XCTAssertEqual(m, mi)
        XCTAssertEqual(metrics, ["loss": .double(0.5)])
        let resp = SecAggUnmaskResponse(round: 5, sender: 2,
                                        seedShares: [SecAggShare(owner: 0, values: [1, 2, 3, 4, (1 << 61) - 2])],
                                        keyShares: [SecAggShare(owner: 1, values: [0x0102_0304_0506_0708, 0, 0, 0, 9])])
        guard case .secAggUnmaskResponse(let r) = try roundTrip(.secAggUnmaskResponse(resp)) else { return XCTFail("not SecAggUnmaskResponse") }
        XCTAssertEqual(r, resp)
    }

    /// Peer-supplied sizes are bounded before use: too many neighbours, a key or share of the wrong
    /// size, a vector that is not whole uint32s.
    func testOutOfBoundsFieldsAreRefused() throws {
        func refusedServer(_ m: ServerMessage, _ needle: String, file: StaticString = #filePath, line: UInt = #line) {
            XCTAssertThrowsError(try roundTrip(m), file: file, line: line) { error in
                XCTAssertTrue("\(error)".contains(needle), "\(error)", file: file, line: line)
            }
        }
        func refusedClient(_ m: ClientMessage, _ needle: String, file: StaticString = #filePath, line: UInt = #line) {
            XCTAssertThrowsError(try roundTrip(m), file: file, line: line) { error in
                XCTAssertTrue("\(error)".contains(needle), "\(error)", file: file, line: line)
            }
        }
        let many = (0 ..< UInt32(WireLimits.maxSecAggEntries + 1)).map { keys($0) }
        refusedServer(.secAggNeighbourKeys(SecAggNeighbourKeys(round: 1, receiver: 0, neighbours: many)),
                      "more than \(WireLimits.maxSecAggEntries) secure-aggregation keys or shares")
        var long = keys(1)
        long.maskKey.append(0)
        refusedClient(.secAggPublicKeys(long), "mask_key at byte")
        var short = keys(1)
        short.encryptionKey.removeLast()
        refusedClient(.secAggPublicKeys(short), "SecAggPublicKeys.encryption_key is 31 bytes; it must be exactly 32")
        var badShare = share(1, 2)
        badShare.ciphertext.removeLast()
        refusedClient(.secAggShareKeys(SecAggShareKeys(round: 1, sender: 1, shares: [badShare])), "must be exactly 108")
        refusedClient(.secAggUnmaskResponse(SecAggUnmaskResponse(round: 1, sender: 1, seedShares: [SecAggShare(owner: 0, values: [1, 2, 3, 4])],
                                                                 keyShares: [])), "must be exactly 40")
        refusedServer(.secAggUnmaskRequest(SecAggUnmaskRequest(round: 1, receiver: 0, seedSharesOf: Array(0 ..< 4097), keySharesOf: [])),
                      "seed_shares_of at byte")
        // A vector of 5 bytes, built by hand: field 8 (masked input) holding field 3 (vector) of length 5.
        let inner: [UInt8] = [0x1A, 5, 1, 2, 3, 4, 5]
        let payload: [UInt8] = [0x42, UInt8(inner.count)] + inner
        XCTAssertThrowsError(try WireDecoder.clientMessage(payload)) { error in
            XCTAssertTrue("\(error)".contains("SecAggMaskedInput.vector is 5 bytes, not a whole number of uint32"), "\(error)")
        }
    }

    /// A client of protocol version 1 (before secure aggregation) is refused at the handshake, saying why.
    func testClientBeforeSecAggIsRefusedAtHandshake() async throws {
        let manager = TestManager()
        let (server, port) = try await startServer(manager)
        let peer = try RawPeer(port: port)
        defer { peer.close() }
        guard case .refusal(let r)? = try peer.handshake(id: "old", version: 1) else { return XCTFail("expected a Refusal") }
        XCTAssertEqual(r.reason, .versionMismatch)
        XCTAssertTrue(r.message.contains("predates this server's (version 2 added secure aggregation"), r.message)
        XCTAssertEqual(manager.count, 0)
        await server.stop()
    }

    /// Four WireClients over loopback sockets run a whole SecAgg+ round with the server's driver: the
    /// unmasked average equals the weighted average of their models within the quantisation bound,
    /// and each client answered every step (nothing dropped).
    func testWholeRoundOverLoopback() async throws {
        let manager = InMemoryClientManager()
        var config = WireServerConfig(host: "127.0.0.1", port: 0, maxFrameBytes: 1 << 20)
        config.mac = CryptoHandshakeMAC()
        let server = WireServer(config: config, manager: manager, logger: quietLogger)
        let port = try await server.start()
        let clients = (0 ..< 4).map { ShiftClient(shift: Float($0 + 1) / 8, numExamples: 10 * ($0 + 1)) }
        let tasks = clients.enumerated().map { i, client in
            Task { try await WireClient.run(config: clientConfig(port, id: "sa\(i)"), client: client, logger: quietLogger) }
        }
        defer { for t in tasks { t.cancel() } }
        let joined = await manager.waitFor(count: 4, timeout: .seconds(30))
        XCTAssertTrue(joined, "4 clients registered")
        XCTAssertEqual(manager.count, 4)
        let model = try testModel()
        let calls = manager.all().map { (client: $0, ins: FitIns(round: 1, parameters: model)) }
        let driver = SecAggRoundDriver(config: SecAggConfig(clippingRange: 1))
        guard case let .aggregated(res, summary, failures, _) = await driver.run(round: 1, calls: calls, global: model, timeout: .seconds(60)) else {
            return XCTFail("the round failed")
        }
        XCTAssertEqual(failures.map(\.reason), [])
        XCTAssertEqual([summary.sampled, summary.sent, summary.dropped, summary.recovered], [4, 4, 0, 0])
        XCTAssertEqual(res.numExamples, 100)
        // Σ nᵢ·shiftᵢ / Σ nᵢ = (10·1 + 20·2 + 30·3 + 40·4)/8 / 100 = 0.375.
        let worst = zip(res.parameters.values, model.values).map { abs(Double($0) - Double($1) - 0.375) }.max() ?? .infinity
        XCTAssertLessThanOrEqual(worst, summary.quantizationErrorBound + 1e-4)
        XCTAssertEqual(res.metrics["shift"]?.doubleValue ?? .nan, (0.125 + 0.25 + 0.375 + 0.5) / 4, accuracy: 1e-12)
        // Traffic by phase, as the connections counted it: each masked input is 1,001 uint32 (4,004
        // bytes) plus frame header, tags, round, sender and one metric; each FitIns carries 1,000 floats.
        XCTAssertEqual(summary.phases.map(\.name), ["key exchange", "sharing", "training + masking", "unmasking"])
        let masking = summary.phases[2]
        XCTAssertGreaterThanOrEqual(masking.bytesUp, 4 * 4_004)
        XCTAssertLessThan(masking.bytesUp, 4 * (4_004 + 100))
        XCTAssertGreaterThanOrEqual(masking.bytesDown, 4 * 4_000)
        let keys = summary.phases[0]
        XCTAssertGreaterThanOrEqual(keys.bytesUp, 4 * 64, "two 32-byte public keys per client")
        XCTAssertLessThan(keys.bytesUp, 4 * (64 + 40))
        for c in manager.all() { await c.finish(roundsCompleted: 1, reason: "done") }
        for t in tasks { _ = try? await t.value }
        await server.stop()
    }

    /// A step the client refuses (an unmask request with no round set up: a forged or replayed one)
    /// comes back as a typed refusal carrying the client's reason, and the connection stays usable.
    func testRefusedStepIsTypedAndKeepsTheConnection() async throws {
        let manager = TestManager()
        let (server, port) = try await startServer(manager)
        let run = Task { try await WireClient.run(config: clientConfig(port, id: "r"), client: PlusOneClient(), logger: quietLogger) }
        defer { run.cancel() }
        let proxy = try await manager.waitForProxy("r")
        do {
            _ = try await proxy.secureAggregation(.unmaskRequest(SecAggUnmaskRequest(round: 9, receiver: 0, seedSharesOf: [1], keySharesOf: [2])),
                                                  timeout: .seconds(20))
            XCTFail("the client must refuse")
        } catch let SecAggParticipationError.refused(id, reason) {
            XCTAssertEqual(id, "r")
            XCTAssertTrue(reason.contains("no secure-aggregation round was set up"), reason)
        }
        let model = try testModel()
        let res = try await proxy.fit(FitIns(round: 2, parameters: model), timeout: .seconds(20))
        XCTAssertEqual(res.parameters.values, model.values.map { $0 + 1 })
        await proxy.finish(roundsCompleted: 2, reason: "done")
        _ = try? await run.value
        await server.stop()
    }
}
