// A small certificate authority for one federation (`flwr certs`): ECDSA P-256 keys from
// swift-crypto, X.509 v3 certificates from swift-certificates. The CA signs one server
// certificate (its subject alternative names are the names clients dial) and one certificate per
// client whose identity (CN and DNS SAN) is `partition-i`, what `flwr client --partition i` announces.
import Crypto
import Foundation
import SwiftASN1
import X509

/// A CA key and its self-signed certificate.
public struct CertificateAuthority: Sendable {
    public let certificate: Certificate
    public let key: P256.Signing.PrivateKey

    /// A new CA named `commonName`, valid from `notBefore` to `notAfter`.
    public init(commonName: String = "flwr federation CA", notBefore: Date, notAfter: Date) throws {
        key = P256.Signing.PrivateKey()
        let name = try DistinguishedName { CommonName(commonName) }
        let publicKey = Certificate.PublicKey(key.publicKey)
        certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: publicKey,
            notValidBefore: notBefore, notValidAfter: notAfter, issuer: name, subject: name,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: publicKey)
            },
            issuerPrivateKey: Certificate.PrivateKey(key))
    }

    /// What a leaf certificate is for.
    public enum Usage: Sendable { case server, client }

    /// A leaf certificate for `commonName` with the given DNS and IP subject alternative names.
    public func issue(commonName: String, dnsNames: [String], ipAddresses: [String], usage: Usage,
                      notBefore: Date, notAfter: Date) throws -> (certificate: Certificate, key: P256.Signing.PrivateKey) {
        let leafKey = P256.Signing.PrivateKey()
        let publicKey = Certificate.PublicKey(leafKey.publicKey)
        var sans: [GeneralName] = dnsNames.map { .dnsName($0) }
        for ip in ipAddresses {
            guard let bytes = Self.ipBytes(ip) else {
                throw TLSError.badConfiguration("\(ip.debugDescription) is not an IP address")
            }
            sans.append(.ipAddress(ASN1OctetString(contentBytes: ArraySlice(bytes))))
        }
        let caKeyID = try certificate.extensions.subjectKeyIdentifier?.keyIdentifier
        let certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: publicKey,
            notValidBefore: notBefore, notValidAfter: notAfter,
            issuer: self.certificate.subject, subject: try DistinguishedName { CommonName(commonName) },
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([usage == .server ? .serverAuth : .clientAuth])
                SubjectAlternativeNames(sans)
                SubjectKeyIdentifier(hash: publicKey)
                if let caKeyID { AuthorityKeyIdentifier(keyIdentifier: caKeyID) }
            },
            issuerPrivateKey: Certificate.PrivateKey(key))
        return (certificate, leafKey)
    }

    /// The 4 or 16 bytes of an IPv4/IPv6 literal.
    static func ipBytes(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }
}

/// The files `flwr certs` writes: DIR/ca.pem, DIR/server.pem, DIR/server.key, DIR/client-i.pem,
/// DIR/client-i.key, each readable by the owner only (0600). The CA's key is not kept: nothing
/// can sign further certificates for this federation (run `flwr certs` again for a new one).
public enum FederationCertificates {
    /// Default lifetimes: the CA 3 years, leaf certificates 1 year (browsers' limit is 398 days).
    public static let caDays = 3 * 365
    public static let leafDays = 365

    /// Writes a CA, a server certificate for `serverNames` (DNS names or IP addresses) and
    /// `clients` client certificates (identities `partition-0` …) into `directory`; returns the
    /// paths written. Refuses to overwrite an existing CA unless `overwrite`.
    @discardableResult
    public static func write(to directory: String, serverNames: [String], clients: Int,
                             leafDays: Int = leafDays, caDays: Int = caDays, overwrite: Bool = false,
                             now: Date = Date()) throws -> [String] {
        guard !serverNames.isEmpty else {
            throw TLSError.badConfiguration("give at least one --server-name (the DNS name or IP address clients dial, e.g. --server-name flwr-server --server-name 10.0.0.5)")
        }
        guard clients >= 0 && clients <= 100_000 else {
            throw TLSError.badConfiguration("--clients must be in 0...100000, got \(clients)")
        }
        guard leafDays >= 1 && caDays >= leafDays else {
            throw TLSError.badConfiguration("lifetimes must be at least 1 day and the CA's at least the certificates' (got \(leafDays) and \(caDays) days)")
        }
        let fm = FileManager.default
        let caPath = (directory as NSString).appendingPathComponent("ca.pem")
        if fm.fileExists(atPath: caPath) && !overwrite {
            throw TLSError.badConfiguration("\(caPath) already exists: a new CA would invalidate every certificate it signed; pick another --out or pass --force")
        }
        do {
            try fm.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw TLSError.unreadableFile(path: directory, reason: "cannot create the folder (\(error))")
        }
        let start = now.addingTimeInterval(-300)  // tolerate small clock skew between machines
        let ca = try CertificateAuthority(notBefore: start, notAfter: now.addingTimeInterval(Double(caDays) * 86_400))
        let leafEnd = now.addingTimeInterval(Double(leafDays) * 86_400)
        var written: [String] = []
        func save(_ name: String, _ text: String) throws {
            let path = (directory as NSString).appendingPathComponent(name)
            try? fm.removeItem(atPath: path)
            guard fm.createFile(atPath: path, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600]) else {
                throw TLSError.unreadableFile(path: path, reason: "cannot write it")
            }
            written.append(path)
        }
        try save("ca.pem", try ca.certificate.serializeAsPEM().pemString + "\n")
        let ips = serverNames.filter { CertificateAuthority.ipBytes($0) != nil }
        let dns = serverNames.filter { CertificateAuthority.ipBytes($0) == nil }
        let server = try ca.issue(commonName: serverNames[0], dnsNames: dns, ipAddresses: ips, usage: .server,
                                  notBefore: start, notAfter: leafEnd)
        try save("server.pem", try server.certificate.serializeAsPEM().pemString + "\n")
        try save("server.key", server.key.pemRepresentation + "\n")
        for i in 0 ..< clients {
            let id = "partition-\(i)"
            let client = try ca.issue(commonName: id, dnsNames: [id], ipAddresses: [], usage: .client,
                                      notBefore: start, notAfter: leafEnd)
            try save("client-\(i).pem", try client.certificate.serializeAsPEM().pemString + "\n")
            try save("client-\(i).key", client.key.pemRepresentation + "\n")
        }
        return written
    }
}

/// PEM text of one federation's certificates, in memory (for `flwr deploy`'s Secrets).
public struct FederationPEM: Sendable {
    public var ca: String
    public var serverCertificate: String
    public var serverKey: String
    /// (identity, certificate, key) per client.
    public var clients: [(identity: String, certificate: String, key: String)]

    /// A new CA, a server certificate for `serverNames` and one client certificate per identity
    /// (CN and DNS SAN = the identity); lifetimes as `FederationCertificates`.
    public static func make(serverNames: [String], clientIdentities: [String], now: Date = Date()) throws -> FederationPEM {
        let start = now.addingTimeInterval(-300)
        let ca = try CertificateAuthority(notBefore: start, notAfter: now.addingTimeInterval(Double(FederationCertificates.caDays) * 86_400))
        let end = now.addingTimeInterval(Double(FederationCertificates.leafDays) * 86_400)
        let ips = serverNames.filter { CertificateAuthority.ipBytes($0) != nil }
        let dns = serverNames.filter { CertificateAuthority.ipBytes($0) == nil }
        let server = try ca.issue(commonName: serverNames.first ?? "flwr-server", dnsNames: dns, ipAddresses: ips,
                                  usage: .server, notBefore: start, notAfter: end)
        var clients: [(identity: String, certificate: String, key: String)] = []
        for id in clientIdentities {
            let c = try ca.issue(commonName: id, dnsNames: [id], ipAddresses: [], usage: .client, notBefore: start, notAfter: end)
            clients.append((id, try c.certificate.serializeAsPEM().pemString + "\n", c.key.pemRepresentation + "\n"))
        }
        return FederationPEM(ca: try ca.certificate.serializeAsPEM().pemString + "\n",
                             serverCertificate: try server.certificate.serializeAsPEM().pemString + "\n",
                             serverKey: server.key.pemRepresentation + "\n", clients: clients)
    }
}

/// A random auth token: 32 bytes from the system's CSPRNG, as 64 hex digits.
public func randomAuthToken() -> String {
    SymmetricKey(size: .bits256).withUnsafeBytes { $0.map { String(format: "%02x", $0) }.joined() }
}
