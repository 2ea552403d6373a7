// Secure by default: a server reachable from other machines refuses to start without TLS or an
// auth token unless the operator says --insecure; the auth token comes from exactly one source;
// and the TLS material of servers and clients is loaded into the wire's configuration (FlowerTLS).
import FlowerTLS
import FlowerWire
import Foundation
import Logging

/// A refusal of the exposure policy or a bad security setting; the description is the message.
public struct SecurityError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Who may reach a listener, and whether it may start open.
public enum ExposurePolicy {
    /// True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost).
    public static func isLoopback(_ host: String) -> Bool {
        let h = host.lowercased()
        if h == "localhost" || h == "::1" || h == "[::1]" { return true }
        var v4 = in_addr()
        if inet_pton(AF_INET, h, &v4) == 1 { return UInt32(bigEndian: v4.s_addr) >> 24 == 127 }
        return false
    }

    /// Why a server on `host` may not start open, or nil when it may.
    public static func refusal(host: String, tls: Bool, token: Bool, insecure: Bool) -> String? {
        if tls || token || insecure || isLoopback(host) { return nil }
        return "refusing to listen on \(host) without TLS or an auth token: other machines could join and read every model. "
            + "Add --tls-cert DIR/server.pem --tls-key DIR/server.key (make them with `flwr certs --out DIR --server-name NAME`), "
            + "or --auth-token-file FILE (or FLWR_AUTH_TOKEN), or listen on --host 127.0.0.1; "
            + "--insecure starts it open anyway"
    }

    /// Why a plaintext Flower-protocol port on `host` is refused, or nil: Flower's protocol has no
    /// client authentication, so on an address other machines reach only TLS (or an explicit
    /// `--insecure`) lets it open.
    public static func flowerPortRefusal(host: String, port: Int?, tls: Bool, insecure: Bool) -> String? {
        guard let port, !tls, !insecure, !isLoopback(host) else { return nil }
        return "refusing to serve Flower's protocol in plaintext on \(host):\(port): it has no client authentication, so anyone "
            + "who reaches the port joins and reads every model. Add --flower-tls-cert DIR/server.pem --flower-tls-key DIR/server.key "
            + "(make them with `flwr certs --out DIR --server-name NAME`; Flower clients pass root_certificates), "
            + "or listen on --host 127.0.0.1; --insecure serves it open anyway"
    }

    /// The auth token from exactly one of the flag (or FLWR_AUTH_TOKEN) and the token file.
    public static func resolveAuthToken(flag: String?, file: String?, logger: Logger,
                                        environment: [String: String] = ProcessInfo.processInfo.environment) throws -> String? {
        if flag != nil && file != nil {
            throw SecurityError("give the auth token once: --auth-token-file or --auth-token/FLWR_AUTH_TOKEN, not both")
        }
        if let flag {
            if flag.isEmpty { throw SecurityError("--auth-token/FLWR_AUTH_TOKEN is empty: set a secret (e.g. `openssl rand -hex 32`)") }
            if environment["FLWR_AUTH_TOKEN"] == nil {
                logger.warning("--auth-token on the command line is visible to every user of this machine (/proc/*/cmdline): prefer --auth-token-file or FLWR_AUTH_TOKEN")
            }
            return flag
        }
        guard let path = file else { return nil }
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw SecurityError("--auth-token-file \(path): cannot read it as UTF-8 text; check the path and its permissions")
        }
        let token = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !token.isEmpty else { throw SecurityError("--auth-token-file \(path) is empty: write the secret into it (e.g. `openssl rand -hex 32 > \(path)`)") }
        return token
    }
}

/// A server's TLS, token and exposure settings.
public struct ServerSecurityConfig: Sendable {
    public var tlsCert: String?
    public var tlsKey: String?
    public var tlsClientCA: String?
    public var tlsRevoked: String?
    /// The token given as a flag or FLWR_AUTH_TOKEN, and the token file: at most one of them.
    public var authToken: String?
    public var authTokenFile: String?
    public var insecure = false

    public init(tlsCert: String? = nil, tlsKey: String? = nil, tlsClientCA: String? = nil, tlsRevoked: String? = nil,
                authToken: String? = nil, authTokenFile: String? = nil, insecure: Bool = false) {
        self.tlsCert = tlsCert; self.tlsKey = tlsKey; self.tlsClientCA = tlsClientCA; self.tlsRevoked = tlsRevoked
        self.authToken = authToken; self.authTokenFile = authTokenFile; self.insecure = insecure
    }

    /// The refusal for a server on `host` (checked before any data is loaded), or nil.
    public func exposureRefusal(host: String) -> String? {
        ExposurePolicy.refusal(host: host, tls: tlsCert != nil, token: authToken != nil || authTokenFile != nil, insecure: insecure)
    }

    /// Sets `config`'s token, handshake MAC and TLS, and refuses an open server on a non-loopback address.
    public func apply(to config: inout WireServerConfig, logger: Logger) throws {
        config.authToken = try ExposurePolicy.resolveAuthToken(flag: authToken, file: authTokenFile, logger: logger)
        config.mac = CryptoHandshakeMAC()
        if let cert = tlsCert, let key = tlsKey {
            do {
                config.security = try TLSServerSecurity(certificatePath: cert, keyPath: key, clientCAPath: tlsClientCA,
                                                        revokedPath: tlsRevoked)
            } catch let error as TLSError {
                throw SecurityError(error.description)
            }
        }
        if let refusal = ExposurePolicy.refusal(host: config.host, tls: config.security != nil, token: config.authToken != nil,
                                                insecure: insecure) {
            throw SecurityError(refusal)
        }
        if insecure && config.security == nil && config.authToken == nil && !ExposurePolicy.isLoopback(config.host) {
            logger.warning("--insecure: listening on \(config.host) without TLS and without an auth token; anyone who reaches the port may join and read every model")
        }
    }
}

/// A client's TLS and token settings.
public struct ClientSecurityConfig: Sendable {
    public var tlsCA: String?
    /// `{client-id}` in these paths is replaced by the client's identity (one Secret mounted in
    /// every client pod holds each client's pair: `flwr deploy`).
    public var tlsCert: String?
    public var tlsKey: String?
    public var tlsServerName: String?
    public var authToken: String?
    public var authTokenFile: String?

    public init(tlsCA: String? = nil, tlsCert: String? = nil, tlsKey: String? = nil, tlsServerName: String? = nil,
                authToken: String? = nil, authTokenFile: String? = nil) {
        self.tlsCA = tlsCA; self.tlsCert = tlsCert; self.tlsKey = tlsKey; self.tlsServerName = tlsServerName
        self.authToken = authToken; self.authTokenFile = authTokenFile
    }

    /// Sets `config`'s token, handshake MAC and TLS.
    public func apply(to config: inout WireClientConfig, logger: Logger) throws {
        config.authToken = try ExposurePolicy.resolveAuthToken(flag: authToken, file: authTokenFile, logger: logger)
        config.mac = CryptoHandshakeMAC()
        if let ca = tlsCA {
            let id = config.clientID
            let cert = tlsCert.map { $0.replacingOccurrences(of: "{client-id}", with: id) }
            let key = tlsKey.map { $0.replacingOccurrences(of: "{client-id}", with: id) }
            do {
                config.security = try TLSClientSecurity(caPath: ca, serverName: tlsServerName ?? config.host,
                                                        certificatePath: cert, keyPath: key)
            } catch let error as TLSError {
                throw SecurityError(error.description)
            }
        }
    }
}
