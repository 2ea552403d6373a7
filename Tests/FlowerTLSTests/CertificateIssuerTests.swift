// `flwr certs`' files: what they hold, who may read them, and that they verify as a chain.
@testable import FlowerTLS
import Foundation
import X509
import XCTest

import SwiftASN1

func der(_ certificate: Certificate) throws -> [UInt8] {
    var serializer = DER.Serializer()
    try serializer.serialize(certificate)
    return serializer.serializedBytes
}

final class CertificateIssuerTests: XCTestCase {
    func testFilesIdentitiesNamesAndPermissions() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("flwr-certs-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let written = try FederationCertificates.write(to: dir, serverNames: ["flwr-server", "10.0.0.5", "::1"], clients: 3)
        let names = written.map { ($0 as NSString).lastPathComponent }
        XCTAssertEqual(names, ["ca.pem", "server.pem", "server.key", "client-0.pem", "client-0.key", "client-1.pem",
                               "client-1.key", "client-2.pem", "client-2.key"])
        for path in written {
            let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
            XCTAssertEqual(mode, 0o600, path)
        }
        let dirMode = try FileManager.default.attributesOfItem(atPath: dir)[.posixPermissions] as? Int
        XCTAssertEqual(dirMode, 0o700)

        let ca = try PEMFiles.x509("\(dir)/ca.pem")[0]
        XCTAssertEqual(try ca.extensions.basicConstraints, .isCertificateAuthority(maxPathLength: 0))
        let server = try PEMFiles.x509("\(dir)/server.pem")[0]
        XCTAssertEqual(CertificateCheck.names(of: server), ["flwr-server", "10.0.0.5", "0:0:0:0:0:0:0:1"])
        XCTAssertEqual(server.notValidAfter.timeIntervalSince(server.notValidBefore), 365 * 86_400 + 300, accuracy: 2)
        XCTAssertEqual(server.signatureAlgorithm, .ecdsaWithSHA256)
        let serverOK = await CertificateCheck.verify(presented: [try der(server)], roots: [ca], role: .server(name: "10.0.0.5"))
        guard case .success = serverOK else { return XCTFail("\(serverOK)") }
        let wrongName = await CertificateCheck.verify(presented: [try der(server)], roots: [ca], role: .server(name: "10.0.0.6"))
        guard case .failure(.nameMismatch) = wrongName else { return XCTFail("\(wrongName)") }
        for i in 0 ..< 3 {
            let client = try PEMFiles.x509("\(dir)/client-\(i).pem")[0]
            XCTAssertEqual(CertificateCheck.identity(of: client), "partition-\(i)")
            let ok = await CertificateCheck.verify(presented: [try der(client)], roots: [ca], role: .client)
            guard case .success = ok else { return XCTFail("client \(i): \(ok)") }
        }
        // The key belongs to the certificate: NIOSSL accepts the pair, and refuses a foreign key.
        XCTAssertNoThrow(try TLSServerSecurity(certificatePath: "\(dir)/server.pem", keyPath: "\(dir)/server.key"))
        XCTAssertThrowsError(try TLSServerSecurity(certificatePath: "\(dir)/server.pem", keyPath: "\(dir)/client-0.key")) {
            XCTAssertEqual($0 as? TLSError, .keyMismatch(certificate: "\(dir)/server.pem", key: "\(dir)/client-0.key"))
        }
        // A second run does not silently replace the CA.
        XCTAssertThrowsError(try FederationCertificates.write(to: dir, serverNames: ["x"], clients: 0)) {
            XCTAssertTrue("\($0)".contains("already exists"), "\($0)")
        }
    }

    func testMissingAndMalformedFilesAreNamed() throws {
        XCTAssertThrowsError(try TLSClientSecurity(caPath: "/nonexistent/ca.pem", serverName: "x")) {
            XCTAssertEqual($0 as? TLSError, .unreadableFile(path: "/nonexistent/ca.pem", reason: "no such file"))
        }
        let junk = FileManager.default.temporaryDirectory.appendingPathComponent("junk-\(UUID().uuidString).pem").path
        try "not a certificate".write(toFile: junk, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: junk) }
        XCTAssertThrowsError(try TLSClientSecurity(caPath: junk, serverName: "x")) {
            guard case .unreadableFile(let path, _)? = $0 as? TLSError else { return XCTFail("\($0)") }
            XCTAssertEqual(path, junk)
        }
    }
}
