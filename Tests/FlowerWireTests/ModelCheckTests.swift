// The model check at Hello: a client stating another model layout than the server's is refused
// with a message naming both; a matching or unstated one joins.
import FlowerCore
@testable import FlowerWire
@testable import FlowerWireCodec
import TestSupport
import XCTest

final class ModelCheckTests: XCTestCase {
    func testHelloAndWelcomeCarryTheModel() throws {
        let hello = Hello(protocolVersion: 1, clientID: "c", partition: 2, acceptsZlib: false, authProof: [], agent: "a",
                          maxFrameBytes: 0, model: "lenet5|0123456789abcdef")
        var d = EmbeddedFrameReader(limit: 1 << 20)
        let frames = try d.feed(try WireEncoder.frame(.hello(hello)))
        guard case .hello(let back) = try WireDecoder.clientMessage(frames[0], limit: 1 << 20) else { return XCTFail() }
        XCTAssertEqual(back, hello)
        let welcome = Welcome(protocolVersion: 1, sessionID: "s1", zlib: true, model: "cnn4|ffff")
        let wf = try d.feed(try WireEncoder.frame(.welcome(welcome)))
        guard case .welcome(let w) = try WireDecoder.serverMessage(wf[0], limit: 1 << 20) else { return XCTFail() }
        XCTAssertEqual(w, welcome)
    }

    func testMismatchRulesNameBothModels() {
        XCTAssertNil(modelMismatch(server: "cnn4|aa", client: "cnn4|aa"))
        XCTAssertNil(modelMismatch(server: "cnn4|aa", client: "spec net.json|aa"), "same layout, other label: joins")
        XCTAssertNil(modelMismatch(server: "", client: "cnn4|aa"), "a server without a model checks nothing")
        XCTAssertNil(modelMismatch(server: "cnn4|aa", client: ""), "a client that does not say (a Flower client) joins")
        let why = modelMismatch(server: "cnn4|aa", client: "lenet5|bb")
        XCTAssertEqual(why?.contains("\"lenet5\""), true, why ?? "")
        XCTAssertEqual(why?.contains("\"cnn4\""), true, why ?? "")
    }

    /// A real server and a real client over TCP.
    func testServerRefusesAClientOfAnotherModel() async throws {
        let manager = TestManager()
        var config = WireServerConfig(host: "127.0.0.1", port: 0, maxFrameBytes: 1 << 20)
        config.model = "cnn4|1111"
        let server = WireServer(config: config, manager: manager, logger: quietLogger)
        let port = try await server.start()
        var client = clientConfig(port, id: "wrong", attempts: 1)
        client.model = "mlp(256,128)|2222"
        do {
            _ = try await WireClient.run(config: client, client: PlusOneClient(), logger: quietLogger)
            XCTFail("should be refused")
        } catch WireError.refused(let reason, let message) {
            XCTAssertEqual(reason, .protocolError)
            XCTAssertTrue(message.contains("mlp(256,128)") && message.contains("cnn4") && message.contains("--model"), message)
        }
        XCTAssertEqual(manager.count, 0)
        await server.stop()
    }
}
