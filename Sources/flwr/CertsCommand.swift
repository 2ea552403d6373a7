// `flwr certs`: a CA, a server certificate and N client certificates for one federation (FlowerTLS).
import ArgumentParser
import FlowerRuntime
import FlowerTLS
import Foundation

/// The `flwr certs` subcommand.
struct CertsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "certs",
        abstract: "Make a CA, a server certificate and client certificates for TLS 1.3 and mutual TLS.",
        discussion: """
            Writes DIR/ca.pem, DIR/server.pem, DIR/server.key and DIR/client-i.pem, DIR/client-i.key \
            for i in 0..<--clients (ECDSA P-256; files readable by the owner only). Client \
            certificate i carries the identity partition-i, what `flwr client --partition i` \
            announces. The CA's private key is not kept. Then: \
            `flwr server --tls-cert DIR/server.pem --tls-key DIR/server.key --tls-client-ca DIR/ca.pem` \
            and `flwr client --partition i --tls-ca DIR/ca.pem --tls-cert DIR/client-i.pem --tls-key DIR/client-i.key`.
            """)

    @Option(help: "Folder to write the files into (created, mode 0700).") var out: String
    @Option(help: "A name clients dial to reach the server, DNS name or IP address (repeatable; all go into the server certificate's subject alternative names).") var serverName: [String] = []
    @Option(help: "Number of client certificates (identities partition-0 ...).") var clients: Int = 0
    @Option(help: "Lifetime of the server and client certificates, in days.") var days: Int = FederationCertificates.leafDays
    @Option(help: "Lifetime of the CA certificate, in days (at least --days).") var caDays: Int = FederationCertificates.caDays
    @Flag(help: "Overwrite an existing DIR/ca.pem (every certificate it signed stops being trusted).") var force = false

    func validate() throws {
        try validating { try FederationCertificates.validate(serverNames: serverName, clients: clients, leafDays: days, caDays: caDays) }
    }

    func run() throws {
        let written: [String]
        do {
            written = try FederationCertificates.write(to: out, serverNames: serverName, clients: clients,
                                                       leafDays: days, caDays: caDays, overwrite: force)
        } catch {
            throw ExitMessage(error: error)
        }
        for path in written { print(path) }
    }
}
