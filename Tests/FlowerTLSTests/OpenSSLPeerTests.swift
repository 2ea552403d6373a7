// A TLS peer nobody here wrote: Debian's `openssl s_client` verifies our server's chain (from
// `flwr certs`) and negotiates TLS 1.3, with and without a client certificate.
import FlowerCore
import FlowerTLS
import FlowerWire
import Foundation
import XCTest

final class OpenSSLPeerTests: XCTestCase {
    /// `openssl`, installed with scripts/bootstrap when missing.
    func opensslPath() throws -> String {
        let path = "/usr/bin/openssl"
        if !FileManager.default.isExecutableFile(atPath: path) {
            let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            _ = try run(root.appendingPathComponent("scripts/bootstrap").path, ["openssl"])
        }
        return path
    }

    func run(_ program: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: program)
        p.arguments = arguments
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    func testOpenSSLVerifiesOurChainAndNegotiatesTLS13() async throws {
        let openssl = try opensslPath()
        let dir = try makeCertificates(clients: 1)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let security = try TLSServerSecurity(certificatePath: "\(dir)/server.pem", keyPath: "\(dir)/server.key")
        let (server, port) = try await startServer(InMemoryClientManager(), security: security)
        let r = try run(openssl, ["s_client", "-tls1_3", "-CAfile", "\(dir)/ca.pem", "-verify_return_error",
                                  "-verify_hostname", "localhost", "-connect", "127.0.0.1:\(port)"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("Verify return code: 0 (ok)"), r.output)
        XCTAssertTrue(r.output.contains("TLSv1.3"), r.output)
        XCTAssertTrue(r.output.contains("CN = localhost") || r.output.contains("CN=localhost"), r.output)

        // A CA it does not know: openssl refuses our chain (the check can fail).
        let other = try makeCertificates(clients: 0)
        defer { try? FileManager.default.removeItem(atPath: other) }
        let bad = try run(openssl, ["s_client", "-tls1_3", "-CAfile", "\(other)/ca.pem", "-verify_return_error",
                                    "-connect", "127.0.0.1:\(port)"])
        XCTAssertNotEqual(bad.status, 0, bad.output)
        await server.stop()
    }

    func testOpenSSLWithClientCertificateAgainstMutualTLS() async throws {
        let openssl = try opensslPath()
        let dir = try makeCertificates(clients: 1)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let security = try TLSServerSecurity(certificatePath: "\(dir)/server.pem", keyPath: "\(dir)/server.key",
                                             clientCAPath: "\(dir)/ca.pem")
        let (server, port) = try await startServer(InMemoryClientManager(), security: security)
        let r = try run(openssl, ["s_client", "-tls1_3", "-CAfile", "\(dir)/ca.pem", "-verify_return_error",
                                  "-cert", "\(dir)/client-0.pem", "-key", "\(dir)/client-0.key",
                                  "-connect", "127.0.0.1:\(port)"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("Verify return code: 0 (ok)"), r.output)
        XCTAssertTrue(r.output.contains("TLSv1.3"), r.output)
        await server.stop()
    }
}
