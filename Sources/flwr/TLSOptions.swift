// `flwr server` / `flwr client` flags for TLS 1.3, mutual TLS and the auth token's sources
// (FlowerTLS). Secure by default: a server reachable from other machines refuses to start
// without TLS or an auth token unless --insecure.
import ArgumentParser
import FlowerTLS
import FlowerWire
import Foundation
import Logging

/// The server's TLS, token-file and --insecure flags.
struct ServerTLSOptions: ParsableArguments {
    @Option(help: "Server certificate chain (PEM; `flwr certs` writes DIR/server.pem). With --tls-key, every connection is TLS 1.3.")
    var tlsCert: String?

    @Option(help: "Private key of --tls-cert (PEM; DIR/server.key).")
    var tlsKey: String?

    @Option(help: "Mutual TLS: every client must present a certificate signed by this CA (PEM; DIR/ca.pem); its identity (DNS SAN, else CN) is the client's identity.")
    var tlsClientCa: String?

    @Option(help: "Mutual TLS: file of revoked client identities, one per line (# comments); such clients are refused even with a valid certificate.")
    var tlsRevoked: String?

    @Option(help: "File holding the shared secret clients must prove (instead of --auth-token on the command line, which other users can read in /proc).")
    var authTokenFile: String?

    @Flag(help: "Allow listening on a non-loopback address without TLS and without an auth token (anyone who reaches the port may join and read every model).")
    var insecure = false

    func validate() throws {
        guard (tlsCert == nil) == (tlsKey == nil) else {
            throw ValidationError("--tls-cert and --tls-key go together: give both (DIR/server.pem and DIR/server.key from `flwr certs`) or neither")
        }
        if tlsClientCa != nil && tlsCert == nil {
            throw ValidationError("--tls-client-ca (mutual TLS) needs --tls-cert and --tls-key: the server must speak TLS first")
        }
        if tlsRevoked != nil && tlsClientCa == nil {
            throw ValidationError("--tls-revoked lists client identities, which only mutual TLS proves: add --tls-client-ca")
        }
    }

    /// Fails fast (before any data is loaded) when the server would listen open on a non-loopback address.
    func validateExposure(host: String, flagToken: String?) throws {
        let token = flagToken != nil || authTokenFile != nil
        if let refusal = exposureRefusal(host: host, tls: tlsCert != nil, token: token, insecure: insecure) {
            throw ValidationError(refusal)
        }
    }

    /// Sets `config`'s token (from --auth-token/FLWR_AUTH_TOKEN or --auth-token-file) and TLS, and
    /// refuses an open server on a non-loopback address.
    func apply(to config: inout WireServerConfig, flagToken: String?, logger: Logger) throws {
        do { try configure(&config, flagToken: flagToken, logger: logger) } catch { throw ExitMessage(error: error) }
    }

    private func configure(_ config: inout WireServerConfig, flagToken: String?, logger: Logger) throws {
        config.authToken = try resolveAuthToken(flag: flagToken, file: authTokenFile, logger: logger)
        config.mac = CryptoHandshakeMAC()
        if let cert = tlsCert, let key = tlsKey {
            do {
                config.security = try TLSServerSecurity(certificatePath: cert, keyPath: key, clientCAPath: tlsClientCa,
                                                        revokedPath: tlsRevoked)
            } catch let error as TLSError {
                throw ValidationError(error.description)
            }
        }
        if let refusal = exposureRefusal(host: config.host, tls: config.security != nil, token: config.authToken != nil,
                                         insecure: insecure) {
            throw ValidationError(refusal)
        }
        if insecure && config.security == nil && config.authToken == nil && !isLoopback(config.host) {
            logger.warning("--insecure: listening on \(config.host) without TLS and without an auth token; anyone who reaches the port may join and read every model")
        }
    }
}

/// The client's TLS and token-file flags.
struct ClientTLSOptions: ParsableArguments {
    @Option(help: "CA certificate that signed the server's certificate (PEM; DIR/ca.pem). Turns on TLS 1.3; the server's chain and name are verified.")
    var tlsCa: String?

    @Option(help: "Mutual TLS: this client's certificate (PEM; DIR/client-i.pem, identity partition-i). `{client-id}` in the path is replaced by the client's identity.")
    var tlsCert: String?

    @Option(help: "Mutual TLS: private key of --tls-cert (PEM; DIR/client-i.key).")
    var tlsKey: String?

    @Option(help: "Name the server's certificate must carry (default: the host of --server); needed when dialling an IP the certificate does not list.")
    var tlsServerName: String?

    @Option(help: "File holding the shared secret the server requires (instead of --auth-token on the command line).")
    var authTokenFile: String?

    func validate() throws {
        guard (tlsCert == nil) == (tlsKey == nil) else {
            throw ValidationError("--tls-cert and --tls-key go together: give both (DIR/client-i.pem and DIR/client-i.key from `flwr certs`) or neither")
        }
        if tlsCa == nil && (tlsCert != nil || tlsServerName != nil) {
            throw ValidationError("--tls-cert, --tls-key and --tls-server-name need --tls-ca (the CA that signed the server's certificate)")
        }
    }

    /// Sets `config`'s token and TLS from these flags.
    func apply(to config: inout WireClientConfig, flagToken: String?, logger: Logger) throws {
        do { try configure(&config, flagToken: flagToken, logger: logger) } catch { throw ExitMessage(error: error) }
    }

    private func configure(_ config: inout WireClientConfig, flagToken: String?, logger: Logger) throws {
        config.authToken = try resolveAuthToken(flag: flagToken, file: authTokenFile, logger: logger)
        config.mac = CryptoHandshakeMAC()
        if let ca = tlsCa {
            // `{client-id}` in a path is this client's identity (one Secret mounted in every
            // client pod holds each client's pair: `flwr deploy`).
            let id = config.clientID
            let cert = tlsCert.map { $0.replacingOccurrences(of: "{client-id}", with: id) }
            let key = tlsKey.map { $0.replacingOccurrences(of: "{client-id}", with: id) }
            do {
                config.security = try TLSClientSecurity(caPath: ca, serverName: tlsServerName ?? config.host,
                                                        certificatePath: cert, keyPath: key)
            } catch let error as TLSError {
                throw ValidationError(error.description)
            }
        }
    }
}

/// The auth token from exactly one of --auth-token (or FLWR_AUTH_TOKEN) and --auth-token-file.
func resolveAuthToken(flag: String?, file: String?, logger: Logger,
                      environment: [String: String] = ProcessInfo.processInfo.environment) throws -> String? {
    if flag != nil && file != nil {
        throw ValidationError("give the auth token once: --auth-token-file or --auth-token/FLWR_AUTH_TOKEN, not both")
    }
    if let flag {
        if flag.isEmpty { throw ValidationError("--auth-token/FLWR_AUTH_TOKEN is empty: set a secret (e.g. `openssl rand -hex 32`)") }
        if environment["FLWR_AUTH_TOKEN"] == nil {
            logger.warning("--auth-token on the command line is visible to every user of this machine (/proc/*/cmdline): prefer --auth-token-file or FLWR_AUTH_TOKEN")
        }
        return flag
    }
    guard let path = file else { return nil }
    guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
        throw ValidationError("--auth-token-file \(path): cannot read it as UTF-8 text; check the path and its permissions")
    }
    let token = text.trimmingCharacters(in: .whitespacesAndNewlines)
    guard !token.isEmpty else { throw ValidationError("--auth-token-file \(path) is empty: write the secret into it (e.g. `openssl rand -hex 32 > \(path)`)") }
    return token
}

/// True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost).
func isLoopback(_ host: String) -> Bool {
    let h = host.lowercased()
    if h == "localhost" || h == "::1" || h == "[::1]" { return true }
    var v4 = in_addr()
    if inet_pton(AF_INET, h, &v4) == 1 { return UInt32(bigEndian: v4.s_addr) >> 24 == 127 }
    return false
}

/// Why a server on `host` may not start open, or nil when it may.
func exposureRefusal(host: String, tls: Bool, token: Bool, insecure: Bool) -> String? {
    if tls || token || insecure || isLoopback(host) { return nil }
    return "refusing to listen on \(host) without TLS or an auth token: other machines could join and read every model. "
        + "Add --tls-cert DIR/server.pem --tls-key DIR/server.key (make them with `flwr certs --out DIR --server-name NAME`), "
        + "or --auth-token-file FILE (or FLWR_AUTH_TOKEN), or listen on --host 127.0.0.1; "
        + "--insecure starts it open anyway"
}

/// Why a plaintext `--flower-port` on `host` is refused, or nil: Flower's protocol has no client
/// authentication, so on an address other machines reach only TLS (or an explicit `--insecure`)
/// lets it open.
func flowerPortExposureRefusal(host: String, port: Int?, tls: Bool, insecure: Bool) -> String? {
    guard let port, !tls, !insecure, !isLoopback(host) else { return nil }
    return "refusing to serve Flower's protocol in plaintext on \(host):\(port): it has no client authentication, so anyone "
        + "who reaches the port joins and reads every model. Add --flower-tls-cert DIR/server.pem --flower-tls-key DIR/server.key "
        + "(make them with `flwr certs --out DIR --server-name NAME`; Flower clients pass root_certificates), "
        + "or listen on --host 127.0.0.1; --insecure serves it open anyway"
}
