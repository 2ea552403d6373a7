// `flwr server` / `flwr client` flags for TLS 1.3, mutual TLS and the auth token's sources.
// Secure by default (FlowerRuntime's ExposurePolicy): a server reachable from other machines
// refuses to start without TLS or an auth token unless --insecure.
import ArgumentParser
import FlowerRuntime

/// The server's TLS, token-file and --insecure flags.
struct ServerTLSOptions: ParsableArguments {
    @Option(help: "Server certificate chain (PEM; `flwr certs` writes DIR/server.pem). With --tls-key, every connection is TLS 1.3.") var tlsCert: String?
    @Option(help: "Private key of --tls-cert (PEM; DIR/server.key).") var tlsKey: String?
    @Option(help: "Mutual TLS: every client must present a certificate signed by this CA (PEM; DIR/ca.pem); its identity (DNS SAN, else CN) is the client's identity.") var tlsClientCa: String?
    @Option(help: "Mutual TLS: file of revoked client identities, one per line (# comments); such clients are refused even with a valid certificate.") var tlsRevoked: String?
    @Option(help: "File holding the shared secret clients must prove (instead of --auth-token on the command line, which other users can read in /proc).") var authTokenFile: String?
    @Flag(help: "Allow listening on a non-loopback address without TLS and without an auth token (anyone who reaches the port may join and read every model).") var insecure = false

    /// The library's form of these flags, with the token given as --auth-token/FLWR_AUTH_TOKEN.
    func config(flagToken: String?) -> ServerSecurityConfig {
        ServerSecurityConfig(tlsCert: tlsCert, tlsKey: tlsKey, tlsClientCA: tlsClientCa, tlsRevoked: tlsRevoked,
                             authToken: flagToken, authTokenFile: authTokenFile, insecure: insecure)
    }
}

/// The client's TLS and token-file flags.
struct ClientTLSOptions: ParsableArguments {
    @Option(help: "CA certificate that signed the server's certificate (PEM; DIR/ca.pem). Turns on TLS 1.3; the server's chain and name are verified.") var tlsCa: String?
    @Option(help: "Mutual TLS: this client's certificate (PEM; DIR/client-i.pem, identity partition-i). `{client-id}` in the path is replaced by the client's identity.") var tlsCert: String?
    @Option(help: "Mutual TLS: private key of --tls-cert (PEM; DIR/client-i.key).") var tlsKey: String?
    @Option(help: "Name the server's certificate must carry (default: the host of --server); needed when dialling an IP the certificate does not list.") var tlsServerName: String?
    @Option(help: "File holding the shared secret the server requires (instead of --auth-token on the command line).") var authTokenFile: String?

    /// The library's form of these flags, with the token given as --auth-token/FLWR_AUTH_TOKEN.
    func config(flagToken: String?) -> ClientSecurityConfig {
        ClientSecurityConfig(tlsCA: tlsCa, tlsCert: tlsCert, tlsKey: tlsKey, tlsServerName: tlsServerName,
                             authToken: flagToken, authTokenFile: authTokenFile)
    }
}
