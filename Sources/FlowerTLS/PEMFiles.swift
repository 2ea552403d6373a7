// Reading the PEM files named on the command line, with errors that name the file.
import Foundation
import NIOSSL
import X509

enum PEMFiles {
    /// The bytes of `path`, or an error naming it.
    static func read(_ path: String) throws -> [UInt8] {
        guard FileManager.default.fileExists(atPath: path) else {
            throw TLSError.unreadableFile(path: path, reason: "no such file")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TLSError.unreadableFile(path: path, reason: "permission denied or not a regular file")
        }
        return Array(data)
    }

    /// Every certificate in the PEM file `path` (at least one).
    static func certificates(_ path: String) throws -> [NIOSSLCertificate] {
        let bytes = try read(path)
        let certs: [NIOSSLCertificate]
        do { certs = try NIOSSLCertificate.fromPEMBytes(bytes) } catch {
            throw TLSError.unreadableFile(path: path, reason: "not a PEM certificate (\(error))")
        }
        guard !certs.isEmpty else { throw TLSError.unreadableFile(path: path, reason: "no CERTIFICATE block in it") }
        return certs
    }

    /// The certificates of `path` parsed by swift-certificates (for our own verification).
    static func x509(_ path: String) throws -> [Certificate] {
        try certificates(path).map { cert in
            do { return try Certificate(derEncoded: try cert.toDERBytes()) } catch {
                throw TLSError.unreadableFile(path: path, reason: "certificate not parseable (\(error))")
            }
        }
    }

    /// The private key in the PEM file `path`.
    static func privateKey(_ path: String) throws -> NIOSSLPrivateKey {
        let bytes = try read(path)
        do { return try NIOSSLPrivateKey(bytes: bytes, format: .pem) } catch {
            throw TLSError.unreadableFile(path: path, reason: "not a PEM private key (\(error))")
        }
    }

    /// Identities listed one per line in `path` (blank lines and `#` comments skipped).
    static func identities(_ path: String) throws -> Set<String> {
        guard let text = String(bytes: try read(path), encoding: .utf8) else {
            throw TLSError.unreadableFile(path: path, reason: "not UTF-8 text")
        }
        return Set(text.split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && !$0.hasPrefix("#") })
    }
}
