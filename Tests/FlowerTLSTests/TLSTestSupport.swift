import FlowerCore
import FlowerTLS
import FlowerWire
import Foundation
import Logging
import Synchronization
import X509
import TestSupport
import XCTest

/// A client that adds 1 to every parameter and reports 10 examples.
struct PlusOneClient: Client {
    func getParameters(_ ins: GetParametersIns) async throws -> ParametersRes {
        ParametersRes(parameters: try Parameters(shapes: [("w", [3])], values: [1, 2, 3]))
    }

    func fit(_ ins: FitIns) async throws -> FitRes {
        var p = ins.parameters
        for i in p.values.indices { p.values[i] += 1 }
        return FitRes(round: ins.round, parameters: p, numExamples: 10)
    }

    func evaluate(_ ins: EvaluateIns) async throws -> EvaluateRes {
        EvaluateRes(round: ins.round, loss: 0.5, numExamples: 5)
    }
}

/// A fresh folder of `flwr certs` output: CA, server (localhost, 127.0.0.1), `clients` clients.
func makeCertificates(clients: Int = 3, serverNames: [String] = ["localhost", "127.0.0.1"]) throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("flwr-tls-\(UUID().uuidString)").path
    try FederationCertificates.write(to: dir, serverNames: serverNames, clients: clients)
    return dir
}

/// Writes a certificate/key pair issued by `ca` with the given validity into `dir/name.pem|key`.
func writeLeaf(_ ca: CertificateAuthority, dir: String, name: String, commonName: String, dns: [String], ips: [String],
               usage: CertificateAuthority.Usage, notBefore: Date, notAfter: Date) throws -> (cert: String, key: String) {
    let leaf = try ca.issue(commonName: commonName, dnsNames: dns, ipAddresses: ips, usage: usage,
                            notBefore: notBefore, notAfter: notAfter)
    let cert = "\(dir)/\(name).pem", key = "\(dir)/\(name).key"
    try (leaf.certificate.serializeAsPEM().pemString + "\n").write(toFile: cert, atomically: true, encoding: .utf8)
    try (leaf.key.pemRepresentation + "\n").write(toFile: key, atomically: true, encoding: .utf8)
    return (cert, key)
}

/// Writes `ca`'s certificate into `dir/name`.
func writeCA(_ ca: CertificateAuthority, dir: String, name: String) throws -> String {
    let path = "\(dir)/\(name)"
    try (ca.certificate.serializeAsPEM().pemString + "\n").write(toFile: path, atomically: true, encoding: .utf8)
    return path
}

/// A started server on an ephemeral loopback port.
func startServer(_ manager: InMemoryClientManager, security: (any ChannelSecurity)?, token: String? = nil,
                 logger: Logger = quietLogger) async throws -> (WireServer, Int) {
    var config = WireServerConfig(host: "127.0.0.1", port: 0, authToken: token, maxFrameBytes: 1 << 20,
                                  handshakeTimeout: .seconds(3))
    config.security = security
    config.raiseDescriptorLimit = false
    let server = WireServer(config: config, manager: manager, logger: logger)
    return (server, try await server.start())
}

/// One attempt, short timeouts: the error comes back instead of being retried for minutes.
func clientConfig(_ port: Int, id: String, security: (any ChannelSecurity)?, host: String = "127.0.0.1") -> WireClientConfig {
    var c = WireClientConfig(host: host, port: port, clientID: id, partition: nil,
                             connectTimeout: .seconds(5),
                             retry: RetryPolicy(initialDelay: .milliseconds(10), maxAttempts: 1, seed: 1))
    c.security = security
    return c
}

/// Runs a client to its end and returns the error it ended with (nil if it finished).
func clientError(_ config: WireClientConfig) async -> (any Error)? {
    do {
        _ = try await WireClient.run(config: config, client: PlusOneClient(), logger: quietLogger)
        return nil
    } catch {
        return error
    }
}

/// Waits (bounded by `seconds`) for `id` to be registered, woken by each registration
/// (`InMemoryClientManager.waitFor`), not by a clock.
func waitForClient(_ manager: InMemoryClientManager, _ id: String, seconds: Double = 20) async throws -> any ClientProxy {
    let end = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
    while true {
        let present = manager.all()
        if let p = present.first(where: { $0.id == id }) { return p }
        let left = end - .now
        guard left > .zero, await manager.waitFor(count: present.count + 1, timeout: left) else {
            if let p = manager.all().first(where: { $0.id == id }) { return p }
            throw NotRegistered(id: id, registered: manager.all().map(\.id))
        }
    }
}

struct NotRegistered: Error { let id: String; let registered: [String] }
