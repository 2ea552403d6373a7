// FlowerWire inside TLS 1.3 over real loopback sockets: a working mutual-TLS session, and every
// failure the issue lists, each checked for the words that name its cause on both sides.
import FlowerCore
@testable import FlowerTLS
import FlowerWire
import Foundation
import TestSupport
import XCTest

final class TLSTransportTests: XCTestCase {
    var dir = ""

    override func setUpWithError() throws { dir = try makeCertificates() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    func serverSecurity(mutual: Bool = true, revoked: String? = nil) throws -> TLSServerSecurity {
        try TLSServerSecurity(certificatePath: "\(dir)/server.pem", keyPath: "\(dir)/server.key",
                              clientCAPath: mutual ? "\(dir)/ca.pem" : nil, revokedPath: revoked)
    }

    func clientSecurity(_ i: Int?, ca: String? = nil, serverName: String = "127.0.0.1") throws -> TLSClientSecurity {
        try TLSClientSecurity(caPath: ca ?? "\(dir)/ca.pem", serverName: serverName,
                              certificatePath: i.map { "\(dir)/client-\($0).pem" }, keyPath: i.map { "\(dir)/client-\($0).key" })
    }

    /// A whole session inside mutual TLS: the certificate's identity registers, a FitIns goes out
    /// and the FitRes (parameters + 1) comes back, Finish ends the client normally.
    func testMutualTLSSessionCarriesFitInsAndFitRes() async throws {
        let manager = InMemoryClientManager()
        let (server, port) = try await startServer(manager, security: try serverSecurity())
        let runConfig = clientConfig(port, id: "partition-1", security: try clientSecurity(1))
        let client = Task { try await WireClient.run(config: runConfig, client: PlusOneClient(), logger: quietLogger) }
        let proxy = try await waitForClient(manager, "partition-1")
        let model = try Parameters(shapes: [("w", [4])], values: [1, -2, 3.5, 0])
        let res = try await proxy.fit(FitIns(round: 1, parameters: model), timeout: .seconds(20))
        XCTAssertEqual(res.parameters.values, [2, -1, 4.5, 1])
        XCTAssertEqual(res.numExamples, 10)
        await proxy.finish(roundsCompleted: 1, reason: "done")
        let rounds = try await client.value
        XCTAssertEqual(rounds, 1)
        await server.stop()
    }

    /// Compression composes with mutual TLS: the model goes out as fp16 and the update comes back
    /// as int8 inside the TLS records. The weights and the +1 update are exact in both encodings
    /// (int8 scale 1/127, every step 127), so the server sees exactly the trained weights.
    func testCompressedBroadcastAndUpdateInsideMutualTLS() async throws {
        let manager = InMemoryClientManager()
        var config = WireServerConfig(host: "127.0.0.1", port: 0, maxFrameBytes: 1 << 20, handshakeTimeout: .seconds(3))
        config.security = try serverSecurity()
        config.raiseDescriptorLimit = false
        config.updateCompression = .int8
        config.broadcastCompression = .fp16
        let server = WireServer(config: config, manager: manager, logger: quietLogger)
        let port = try await server.start()
        let runConfig = clientConfig(port, id: "partition-2", security: try clientSecurity(2))
        let client = Task { try await WireClient.run(config: runConfig, client: PlusOneClient(), logger: quietLogger) }
        let proxy = try await waitForClient(manager, "partition-2")
        let model = try Parameters(shapes: [("w", [4])], values: [1, -2, 3.5, 0])
        let res = try await proxy.fit(FitIns(round: 1, parameters: model), timeout: .seconds(20))
        XCTAssertEqual(res.parameters.values, [2, -1, 4.5, 1])
        await proxy.finish(roundsCompleted: 1, reason: "done")
        let rounds = try await client.value
        XCTAssertEqual(rounds, 1)
        await server.stop()
    }

    /// Server-only TLS (no client certificates): any client with the CA joins under its Hello's ID.
    func testServerOnlyTLSAcceptsClientWithoutCertificate() async throws {
        let manager = InMemoryClientManager()
        let (server, port) = try await startServer(manager, security: try serverSecurity(mutual: false))
        let runConfig = clientConfig(port, id: "anyone", security: try clientSecurity(nil))
        let client = Task { try await WireClient.run(config: runConfig, client: PlusOneClient(), logger: quietLogger) }
        let proxy = try await waitForClient(manager, "anyone")
        let res = try await proxy.getParameters(GetParametersIns(), timeout: .seconds(20))
        XCTAssertEqual(res.parameters.values, [1, 2, 3])
        await proxy.finish(roundsCompleted: 0, reason: "done")
        _ = try await client.value
        await server.stop()
    }

    /// A plain client to a TLS server: the server sends nothing until a ClientHello; both sides
    /// say TLS is the likely reason.
    func testPlainClientToTLSServer() async throws {
        let log = LogCapture()
        let (server, port) = try await startServer(InMemoryClientManager(), security: try serverSecurity(), logger: log.logger)
        var config = clientConfig(port, id: "partition-0", security: nil)
        config.connectTimeout = .seconds(1)
        let error = await clientError(config)
        XCTAssertTrue("\(error.map { "\($0)" } ?? "none")".contains("if that server uses TLS, give this client --tls-ca"), "\(String(describing: error))")
        // The client gives up first (1 s): the server sees it leave without a handshake.
        let logged = await log.waitFor("give it --tls-ca")
        XCTAssertTrue(logged, log.text)
        await server.stop()
    }

    /// A TLS client to a plain server: the client says the server is not TLS, the server says
    /// the peer opened a TLS handshake.
    func testTLSClientToPlainServer() async throws {
        let log = LogCapture()
        let (server, port) = try await startServer(InMemoryClientManager(), security: nil, logger: log.logger)
        let error = await clientError(clientConfig(port, id: "partition-0", security: try clientSecurity(0)))
        XCTAssertEqual(error as? TLSError, .serverNotTLS, "\(String(describing: error))")
        let logged = await log.waitFor("the peer opened a TLS handshake, but this side speaks plain FlowerWire")
        XCTAssertTrue(logged, log.text)
        await server.stop()
    }

    /// A server certificate from a CA the client does not trust.
    func testUnknownCA() async throws {
        let other = try makeCertificates()
        defer { try? FileManager.default.removeItem(atPath: other) }
        let (server, port) = try await startServer(InMemoryClientManager(), security: try serverSecurity(mutual: false))
        let error = await clientError(clientConfig(port, id: "x", security: try clientSecurity(nil, ca: "\(other)/ca.pem")))
        guard case .unknownAuthority(let whose, _, _)? = error as? TLSError else { return XCTFail("\(String(describing: error))") }
        XCTAssertTrue(whose.contains("server"))
        XCTAssertTrue("\(error!)".contains("not by the trusted CA"), "\(error!)")
        await server.stop()
    }

    /// Expired and not-yet-valid server certificates, each named as such with its date.
    func testExpiredAndNotYetValidServerCertificates() async throws {
        let ca = try CertificateAuthority(notBefore: Date().addingTimeInterval(-10 * 86_400), notAfter: Date().addingTimeInterval(10 * 86_400))
        let caPath = try writeCA(ca, dir: dir, name: "ca2.pem")
        let day = 86_400.0
        let cases: [(String, Date, Date)] = [("expired", Date().addingTimeInterval(-5 * day), Date().addingTimeInterval(-day)),
                                             ("future", Date().addingTimeInterval(day), Date().addingTimeInterval(5 * day))]
        for (name, from, to) in cases {
            let leaf = try writeLeaf(ca, dir: dir, name: name, commonName: "localhost", dns: ["localhost"], ips: ["127.0.0.1"],
                                     usage: .server, notBefore: from, notAfter: to)
            let security = try TLSServerSecurity(certificatePath: leaf.cert, keyPath: leaf.key)
            let (server, port) = try await startServer(InMemoryClientManager(), security: security)
            let error = await clientError(clientConfig(port, id: "x", security: try TLSClientSecurity(caPath: caPath, serverName: "127.0.0.1")))
            switch (name, error as? TLSError) {
            case ("expired", .expired(_, let notAfter)?):
                XCTAssertEqual(notAfter.timeIntervalSince1970, to.timeIntervalSince1970, accuracy: 1)
                XCTAssertTrue("\(error!)".contains("expired on"))
            case ("future", .notYetValid(_, let notBefore)?):
                XCTAssertEqual(notBefore.timeIntervalSince1970, from.timeIntervalSince1970, accuracy: 1)
                XCTAssertTrue("\(error!)".contains("is not valid before"))
            default:
                XCTFail("\(name): \(String(describing: error))")
            }
            await server.stop()
        }
    }

    /// Dialling a name the server certificate does not carry.
    func testNameMismatch() async throws {
        let manager = InMemoryClientManager()
        let (server, port) = try await startServer(manager, security: try serverSecurity(mutual: false))
        let error = await clientError(clientConfig(port, id: "x", security: try clientSecurity(nil, serverName: "flwr.example.org")))
        guard case .nameMismatch(let expected, let presented)? = error as? TLSError else { return XCTFail("\(String(describing: error))") }
        XCTAssertEqual(expected, "flwr.example.org")
        XCTAssertEqual(Set(presented), ["localhost", "127.0.0.1"])
        // The same certificate verifies under one of its names.
        let config = clientConfig(port, id: "y", security: try clientSecurity(nil, serverName: "localhost"))
        let client = Task { try await WireClient.run(config: config, client: PlusOneClient(), logger: quietLogger) }
        let proxy = try await waitForClient(manager, "y")
        await proxy.finish(roundsCompleted: 0, reason: "done")
        _ = try await client.value
        await server.stop()
    }

    /// A client without a certificate to a mutual-TLS server: both sides name the missing certificate.
    func testMissingClientCertificate() async throws {
        let log = LogCapture()
        let (server, port) = try await startServer(InMemoryClientManager(), security: try serverSecurity(), logger: log.logger)
        let error = await clientError(clientConfig(port, id: "partition-0", security: try clientSecurity(nil)))
        XCTAssertEqual(error as? TLSError, .clientCertificateRequired, "\(String(describing: error))")
        let logged = await log.waitFor("the client presented no certificate")
        XCTAssertTrue(logged, log.text)
        await server.stop()
    }

    /// A client certificate from another CA, and an expired one: the server names the cause, the
    /// client learns its certificate was rejected.
    func testClientCertificateFromOtherCAOrExpired() async throws {
        let log = LogCapture()
        let (server, port) = try await startServer(InMemoryClientManager(), security: try serverSecurity(), logger: log.logger)
        let other = try makeCertificates()
        defer { try? FileManager.default.removeItem(atPath: other) }
        let foreign = try TLSClientSecurity(caPath: "\(dir)/ca.pem", serverName: "127.0.0.1",
                                            certificatePath: "\(other)/client-0.pem", keyPath: "\(other)/client-0.key")
        let error = await clientError(clientConfig(port, id: "partition-0", security: foreign))
        guard case .rejectedByPeer(_, let ours)? = error as? TLSError else { return XCTFail("\(String(describing: error))") }
        XCTAssertEqual(ours, "this client's certificate")
        let named = await log.waitFor("the client's certificate (partition-0) was issued by")
        XCTAssertTrue(named, log.text)

        let ca = try CertificateAuthority(notBefore: Date().addingTimeInterval(-10 * 86_400), notAfter: Date().addingTimeInterval(10 * 86_400))
        let caPath = try writeCA(ca, dir: dir, name: "ca3.pem")
        let mutual = try TLSServerSecurity(certificatePath: "\(dir)/server.pem", keyPath: "\(dir)/server.key", clientCAPath: caPath)
        let (server2, port2) = try await startServer(InMemoryClientManager(), security: mutual, logger: log.logger)
        let old = try writeLeaf(ca, dir: dir, name: "old", commonName: "partition-2", dns: ["partition-2"], ips: [],
                                usage: .client, notBefore: Date().addingTimeInterval(-3 * 86_400), notAfter: Date().addingTimeInterval(-86_400))
        let expired = try TLSClientSecurity(caPath: "\(dir)/ca.pem", serverName: "127.0.0.1", certificatePath: old.cert, keyPath: old.key)
        let error2 = await clientError(clientConfig(port2, id: "partition-2", security: expired))
        XCTAssertNotNil(error2 as? TLSError, "\(String(describing: error2))")
        let expiredLogged = await log.waitFor("the client's certificate (partition-2) expired on")
        XCTAssertTrue(expiredLogged, log.text)
        await server.stop()
        await server2.stop()
    }

    /// A revoked identity (valid certificate, listed in --tls-revoked) is refused at Hello with the reason.
    func testRevokedClientIdentityIsRefused() async throws {
        let revoked = "\(dir)/revoked.txt"
        try "# left the federation\npartition-1\n".write(toFile: revoked, atomically: true, encoding: .utf8)
        let manager = InMemoryClientManager()
        let (server, port) = try await startServer(manager, security: try serverSecurity(revoked: revoked))
        let error = await clientError(clientConfig(port, id: "partition-1", security: try clientSecurity(1)))
        guard case .refused(let reason, let message)? = error as? WireError else { return XCTFail("\(String(describing: error))") }
        XCTAssertEqual(reason, .badCredentials)
        XCTAssertTrue(message.contains("\"partition-1\" is revoked"), message)
        // Another identity of the same CA still joins.
        let runConfig = clientConfig(port, id: "partition-2", security: try clientSecurity(2))
        let client = Task { try await WireClient.run(config: runConfig, client: PlusOneClient(), logger: quietLogger) }
        let proxy = try await waitForClient(manager, "partition-2")
        await proxy.finish(roundsCompleted: 0, reason: "done")
        _ = try await client.value
        await server.stop()
    }

    /// The certificate is the identity: claiming another client ID is refused, and a second
    /// connection with a registered identity is refused as a duplicate.
    func testCertificateIdentityIsTheClientIdentity() async throws {
        let manager = InMemoryClientManager()
        let (server, port) = try await startServer(manager, security: try serverSecurity())
        let impostor = await clientError(clientConfig(port, id: "partition-2", security: try clientSecurity(0)))
        guard case .refused(.badCredentials, let message)? = impostor as? WireError else { return XCTFail("\(String(describing: impostor))") }
        XCTAssertTrue(message.contains("proves identity \"partition-0\" but the Hello claims \"partition-2\""), message)

        let firstConfig = clientConfig(port, id: "partition-0", security: try clientSecurity(0))
        let first = Task { try await WireClient.run(config: firstConfig, client: PlusOneClient(), logger: quietLogger) }
        let proxy = try await waitForClient(manager, "partition-0")
        let second = await clientError(clientConfig(port, id: "partition-0", security: try clientSecurity(0)))
        guard case .refused(.duplicateIdentity, _)? = second as? WireError else { return XCTFail("\(String(describing: second))") }
        await proxy.finish(roundsCompleted: 0, reason: "done")
        _ = try await first.value
        await server.stop()
    }
}
