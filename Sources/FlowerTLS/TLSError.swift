// TLSError: every way TLS setup or a TLS handshake fails, in words that name the cause and the fix.
import Foundation

/// A TLS failure: the bad value and what to do are in `description`.
public enum TLSError: Error, CustomStringConvertible, Equatable, Sendable {
    /// A PEM file could not be read or parsed.
    case unreadableFile(path: String, reason: String)
    /// The private key does not belong to the certificate.
    case keyMismatch(certificate: String, key: String)
    /// Inconsistent flags (e.g. --tls-cert without --tls-key).
    case badConfiguration(String)
    /// A certificate's validity ended before now.
    case expired(whose: String, notAfter: Date)
    /// A certificate's validity starts after now.
    case notYetValid(whose: String, notBefore: Date)
    /// A certificate not issued by the trusted CA.
    case unknownAuthority(whose: String, issuer: String, trusted: String)
    /// The server's certificate is for other names than the one dialled.
    case nameMismatch(expected: String, presented: [String])
    /// A client certificate that names nobody (no CN, no DNS SAN).
    case noIdentity(whose: String)
    /// The peer sent something that is not a certificate we can parse.
    case unparseableCertificate(whose: String, reason: String)
    /// The server answered in plain FlowerWire, not TLS.
    case serverNotTLS
    /// The server requires a client certificate and this client has none.
    case clientCertificateRequired
    /// A client connected to a mutual-TLS server without a certificate (server side).
    case clientCertificateMissing
    /// The peer rejected our certificate with a TLS alert.
    case rejectedByPeer(alert: String, ours: String)
    /// Any other TLS handshake failure.
    case handshakeFailed(String)

    public var description: String {
        switch self {
        case .unreadableFile(let path, let reason):
            return "cannot read \(path): \(reason); check the path and that it holds PEM data (`flwr certs --out DIR` writes such files)"
        case .keyMismatch(let certificate, let key):
            return "the private key \(key) does not belong to the certificate \(certificate): give the .key file made together with that .pem"
        case .badConfiguration(let message):
            return message
        case .expired(let whose, let notAfter):
            return "\(whose) expired on \(Self.format(notAfter)): issue a new one (`flwr certs`) and restart with it"
        case .notYetValid(let whose, let notBefore):
            return "\(whose) is not valid before \(Self.format(notBefore)): check this machine's clock, or issue a certificate valid from now"
        case .unknownAuthority(let whose, let issuer, let trusted):
            return "\(whose) was issued by \(issuer.debugDescription), not by the trusted CA \(trusted.debugDescription): give the CA that signed it (--tls-ca on clients, --tls-client-ca on the server), or a certificate from this CA"
        case .nameMismatch(let expected, let presented):
            return "the server's certificate is for \(presented.isEmpty ? "no name" : presented.joined(separator: ", ")), not \(expected.debugDescription): dial one of those names, pass --tls-server-name NAME, or reissue the server certificate with --server-name \(expected)"
        case .noIdentity(let whose):
            return "\(whose) carries no identity (neither a DNS subject alternative name nor a common name): issue it with `flwr certs`"
        case .unparseableCertificate(let whose, let reason):
            return "\(whose) cannot be parsed (\(reason)): issue a new one with `flwr certs`"
        case .serverNotTLS:
            return "the server answered in plain FlowerWire, not TLS: drop --tls-ca on this client, or start the server with --tls-cert and --tls-key"
        case .clientCertificateRequired:
            return "the server requires a client certificate (mutual TLS): give this client --tls-cert and --tls-key (`flwr certs --clients N` makes client-i.pem/.key)"
        case .clientCertificateMissing:
            return "the client presented no certificate, but this server requires one (--tls-client-ca): give the client --tls-cert and --tls-key"
        case .rejectedByPeer(let alert, let ours):
            return "the peer rejected \(ours) (TLS alert \(alert)): check it was issued by the CA the peer trusts and is within its validity period"
        case .handshakeFailed(let detail):
            return "TLS handshake failed: \(detail)"
        }
    }

    static func format(_ date: Date) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        return f.string(from: date)
    }
}
