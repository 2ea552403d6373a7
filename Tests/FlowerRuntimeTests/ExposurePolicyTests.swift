// The secure-by-default table: which listeners may start open, and where the auth token comes from.
import Foundation
import Logging
import Testing
@testable import FlowerRuntime

struct ExposurePolicyTests {
    struct Case: Sendable, CustomStringConvertible {
        let host: String, tls: Bool, token: Bool, insecure: Bool, refused: Bool
        var description: String { "\(host) tls=\(tls) token=\(token) insecure=\(insecure)" }
    }

    @Test(arguments: [
        Case(host: "127.0.0.1", tls: false, token: false, insecure: false, refused: false),
        Case(host: "127.8.9.10", tls: false, token: false, insecure: false, refused: false),
        Case(host: "localhost", tls: false, token: false, insecure: false, refused: false),
        Case(host: "LOCALHOST", tls: false, token: false, insecure: false, refused: false),
        Case(host: "::1", tls: false, token: false, insecure: false, refused: false),
        Case(host: "[::1]", tls: false, token: false, insecure: false, refused: false),
        Case(host: "0.0.0.0", tls: false, token: false, insecure: false, refused: true),
        Case(host: "128.0.0.1", tls: false, token: false, insecure: false, refused: true),
        Case(host: "10.0.0.5", tls: false, token: false, insecure: false, refused: true),
        Case(host: "::", tls: false, token: false, insecure: false, refused: true),
        Case(host: "flwr-server.svc", tls: false, token: false, insecure: false, refused: true),
        Case(host: "0.0.0.0", tls: true, token: false, insecure: false, refused: false),
        Case(host: "0.0.0.0", tls: false, token: true, insecure: false, refused: false),
        Case(host: "0.0.0.0", tls: false, token: false, insecure: true, refused: false),
    ])
    func serverExposure(_ c: Case) {
        let refusal = ExposurePolicy.refusal(host: c.host, tls: c.tls, token: c.token, insecure: c.insecure)
        #expect((refusal != nil) == c.refused)
        if let refusal {
            #expect(refusal.hasPrefix("refusing to listen on \(c.host) without TLS or an auth token"))
            #expect(refusal.contains("--insecure"))
        }
    }

    @Test func flowerPortOpensOnlyOnLoopbackTLSOrInsecure() {
        #expect(ExposurePolicy.flowerPortRefusal(host: "0.0.0.0", port: nil, tls: false, insecure: false) == nil)
        #expect(ExposurePolicy.flowerPortRefusal(host: "127.0.0.1", port: 9092, tls: false, insecure: false) == nil)
        #expect(ExposurePolicy.flowerPortRefusal(host: "0.0.0.0", port: 9092, tls: true, insecure: false) == nil)
        #expect(ExposurePolicy.flowerPortRefusal(host: "0.0.0.0", port: 9092, tls: false, insecure: true) == nil)
        let refusal = ExposurePolicy.flowerPortRefusal(host: "0.0.0.0", port: 9092, tls: false, insecure: false)
        #expect(refusal?.hasPrefix("refusing to serve Flower's protocol in plaintext on 0.0.0.0:9092") == true)
    }

    @Test func serverSecurityCountsATokenFileAsAToken() {
        #expect(ServerSecurityConfig().exposureRefusal(host: "0.0.0.0") != nil)
        #expect(ServerSecurityConfig(authTokenFile: "/run/token").exposureRefusal(host: "0.0.0.0") == nil)
        #expect(ServerSecurityConfig(authToken: "s").exposureRefusal(host: "0.0.0.0") == nil)
    }

    @Test func authTokenComesFromExactlyOneSource() throws {
        let logger = Logger(label: "test")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("flwr-token-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("token").path
        try "  s3cret\n".write(toFile: file, atomically: true, encoding: .utf8)
        #expect(try ExposurePolicy.resolveAuthToken(flag: nil, file: file, logger: logger) == "s3cret")
        #expect(try ExposurePolicy.resolveAuthToken(flag: "abc", file: nil, logger: logger, environment: ["FLWR_AUTH_TOKEN": "abc"]) == "abc")
        #expect(try ExposurePolicy.resolveAuthToken(flag: nil, file: nil, logger: logger) == nil)
        #expect(throws: SecurityError("give the auth token once: --auth-token-file or --auth-token/FLWR_AUTH_TOKEN, not both")) {
            try ExposurePolicy.resolveAuthToken(flag: "abc", file: file, logger: logger)
        }
        #expect(throws: SecurityError.self) { try ExposurePolicy.resolveAuthToken(flag: "", file: nil, logger: logger) }
        let empty = dir.appendingPathComponent("empty").path
        try "\n".write(toFile: empty, atomically: true, encoding: .utf8)
        #expect(throws: SecurityError("--auth-token-file \(empty) is empty: write the secret into it (e.g. `openssl rand -hex 32 > \(empty)`)")) {
            try ExposurePolicy.resolveAuthToken(flag: nil, file: empty, logger: logger)
        }
        #expect(throws: SecurityError.self) {
            try ExposurePolicy.resolveAuthToken(flag: nil, file: dir.appendingPathComponent("missing").path, logger: logger)
        }
    }
}
