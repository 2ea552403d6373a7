// Verification of a peer's certificate chain with swift-certificates, done in steps so a failure
// names its cause (expired, not yet valid, unknown CA, wrong name) instead of BoringSSL's single
// CERTIFICATE_VERIFY_FAILED. NIOSSL hands the chain to this check through its custom
// verification callback, which replaces BoringSSL's own verification (the whole check is here).
import Foundation
import NIOSSL
import SwiftASN1
import X509

/// What a certificate is checked for.
enum CertificateRole: Sendable {
    /// A server's certificate, which must carry `name` (a DNS name or an IP address).
    case server(name: String)
    /// A client's certificate (mutual TLS), which must carry an identity.
    case client
}

enum CertificateCheck {
    /// The identity a certificate proves: its first DNS subject alternative name, else its common name.
    static func identity(of certificate: Certificate) -> String? {
        if let sans = try? certificate.extensions.subjectAlternativeNames {
            for name in sans { if case .dnsName(let dns) = name { return dns } }
        }
        return commonName(certificate.subject)
    }

    static func commonName(_ name: DistinguishedName) -> String? {
        for rdn in name {
            for attribute in rdn where attribute.type == .RDNAttributeType.commonName {
                return attribute.value.description
            }
        }
        return nil
    }

    /// A short readable name for messages: CN, else the whole distinguished name.
    static func label(_ name: DistinguishedName) -> String { commonName(name) ?? name.description }

    /// The names a server certificate is valid for (DNS and IP subject alternative names).
    static func names(of certificate: Certificate) -> [String] {
        guard let sans = try? certificate.extensions.subjectAlternativeNames else { return [] }
        return sans.compactMap { name in
            switch name {
            case .dnsName(let dns): return dns
            case .ipAddress(let octets): return ipText(Array(octets.bytes))
            default: return nil
            }
        }
    }

    static func ipText(_ bytes: [UInt8]) -> String {
        if bytes.count == 4 { return bytes.map(String.init).joined(separator: ".") }
        if bytes.count == 16 {
            return stride(from: 0, to: 16, by: 2).map { String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16) }
                .joined(separator: ":")
        }
        return bytes.map { String($0, radix: 16) }.joined(separator: ".")
    }

    /// True when `name` is an IPv4 or IPv6 literal.
    static func isIPAddress(_ name: String) -> Bool {
        var v4 = in_addr(), v6 = in6_addr()
        return inet_pton(AF_INET, name, &v4) == 1 || inet_pton(AF_INET6, name, &v6) == 1
    }

    /// Verifies the chain `presented` (leaf first, DER) against `roots` for `role` at `now`;
    /// returns the leaf, or the first failure in the order a user would fix them.
    static func verify(presented: [[UInt8]], roots: [Certificate], role: CertificateRole,
                       now: Date = Date()) async -> Result<Certificate, TLSError> {
        let whose: String
        switch role {
        case .server: whose = "the server's certificate"
        case .client: whose = "the client's certificate"
        }
        guard !presented.isEmpty else { return .failure(.clientCertificateMissing) }
        let chain: [Certificate]
        do { chain = try presented.map { try Certificate(derEncoded: $0) } } catch {
            return .failure(.unparseableCertificate(whose: whose, reason: "\(error)"))
        }
        let leaf = chain[0]
        let subject = "\(whose) (\(label(leaf.subject)))"
        if now > leaf.notValidAfter { return .failure(.expired(whose: subject, notAfter: leaf.notValidAfter)) }
        if now < leaf.notValidBefore { return .failure(.notYetValid(whose: subject, notBefore: leaf.notValidBefore)) }
        let intermediates = CertificateStore(chain.dropFirst())
        let trusted = roots.map { label($0.subject) }.joined(separator: ", ")
        var chainVerifier = Verifier(rootCertificates: CertificateStore(roots)) { RFC5280Policy(validationTime: now) }
        guard case .validCertificate = await chainVerifier.validate(leaf: leaf, intermediates: intermediates) else {
            return .failure(.unknownAuthority(whose: subject, issuer: label(leaf.issuer), trusted: trusted))
        }
        switch role {
        case .server(let name):
            let ip = isIPAddress(name)
            var nameVerifier = Verifier(rootCertificates: CertificateStore(roots)) {
                RFC5280Policy(validationTime: now)
                ServerIdentityPolicy(serverHostname: ip ? nil : name, serverIP: ip ? name : nil)
            }
            guard case .validCertificate = await nameVerifier.validate(leaf: leaf, intermediates: intermediates) else {
                return .failure(.nameMismatch(expected: name, presented: names(of: leaf)))
            }
        case .client:
            guard identity(of: leaf) != nil else { return .failure(.noIdentity(whose: subject)) }
        }
        return .success(leaf)
    }
}
