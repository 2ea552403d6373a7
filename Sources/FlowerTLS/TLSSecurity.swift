// TLS 1.3 for FlowerWire: the `ChannelSecurity` implementations that put NIOSSL's handler at the
// head of every connection's pipeline (FlowerWire/ChannelSecurity.swift), for the server (with
// optional mutual TLS) and the client.
//
//   [NIOSSL(Server|Client)Handler] → [TLSHandshakeObserver] → ReadGate → frame decoder → ...
//
// The observer keeps what the certificate check found (the peer's identity, or why it failed)
// and turns NIOSSL's errors into `TLSError`s that name the cause.
import FlowerWire
import Foundation
import Logging
import NIOCore
import NIOSSL
import NIOTLS
import Synchronization
import X509

/// Server side: `--tls-cert`, `--tls-key`, and with `--tls-client-ca` mutual TLS.
public final class TLSServerSecurity: ChannelSecurity {
    let context: NIOSSLContext
    /// Trusted issuers of client certificates; nil: clients are not asked for one.
    let clientCAs: [Certificate]?
    /// Client identities refused although their certificate is valid (--tls-revoked).
    let revoked: Set<String>
    let revokedPath: String?

    /// Loads the server's certificate chain and key (PEM) and, for mutual TLS, the client CA and
    /// an optional list of revoked client identities (one per line).
    public init(certificatePath: String, keyPath: String, clientCAPath: String? = nil, revokedPath: String? = nil) throws {
        let chain = try PEMFiles.certificates(certificatePath)
        let key = try PEMFiles.privateKey(keyPath)
        var config = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) },
                                                               privateKey: .privateKey(key))
        config.minimumTLSVersion = .tlsv13
        if let path = clientCAPath {
            let cas = try PEMFiles.x509(path)
            clientCAs = cas
            // The chain is checked by CertificateCheck (the custom callback below); a client
            // certificate names an identity, not a host, so NIOSSL's hostname check stays off.
            config.certificateVerification = .noHostnameVerification
            config.trustRoots = .certificates(try PEMFiles.certificates(path))
        } else {
            clientCAs = nil
            if revokedPath != nil {
                throw TLSError.badConfiguration("--tls-revoked lists client identities, which only mutual TLS proves: add --tls-client-ca CA.pem")
            }
        }
        revoked = try revokedPath.map(PEMFiles.identities) ?? []
        self.revokedPath = revokedPath
        do { context = try NIOSSLContext(configuration: config) } catch {
            if Self.isKeyMismatch(error) { throw TLSError.keyMismatch(certificate: certificatePath, key: keyPath) }
            throw TLSError.badConfiguration("cannot set up TLS with \(certificatePath) and \(keyPath): \(error)")
        }
    }

    /// NIOSSL's answer to a key that does not belong to the certificate.
    static func isKeyMismatch(_ error: any Error) -> Bool {
        if case .failedToLoadPrivateKey? = error as? NIOSSLError { return true }
        return "\(error)".contains("KEY_VALUES_MISMATCH")
    }

    public var summary: String {
        clientCAs == nil ? "TLS 1.3 (no client certificates)"
            : "TLS 1.3 with mutual TLS (client certificates from \(clientCAs!.map { CertificateCheck.label($0.subject) }.joined(separator: ", ")) required; certificate identity = client identity; \(revoked.count) revoked)"
    }

    public func secure(_ channel: any Channel) throws {
        let observer = TLSHandshakeObserver(role: .server)
        let handler: NIOSSLServerHandler
        if let roots = clientCAs {
            let note = observer.note
            handler = NIOSSLServerHandler(context: context) { certificates, promise in
                let der = certificates.compactMap { try? $0.toDERBytes() }
                promise.completeWithTask {
                    switch await CertificateCheck.verify(presented: der, roots: roots, role: .client) {
                    case .success(let leaf):
                        note.identity = CertificateCheck.identity(of: leaf)
                        return .certificateVerified
                    case .failure(let why):
                        note.failure = why
                        return .failed
                    }
                }
            }
        } else {
            handler = NIOSSLServerHandler(context: context)
        }
        let sync = channel.pipeline.syncOperations
        try sync.addHandler(handler)
        try sync.addHandler(observer)
    }

    public func authorize(_ channel: any Channel) -> PeerAuthorization {
        guard clientCAs != nil else { return .anonymous }
        guard let observer = try? channel.pipeline.syncOperations.handler(type: TLSHandshakeObserver.self),
              let id = observer.note.identity else {
            return .refused("no verified client certificate on this connection: give the client --tls-cert and --tls-key")
        }
        if revoked.contains(id) {
            return .refused("the client identity \(id.debugDescription) is revoked on this server (listed in --tls-revoked \(revokedPath ?? "")): issue the client a new identity, or remove it from that list")
        }
        return .identity(id)
    }
}

/// Client side: `--tls-ca` (the server's chain and name are verified), `--tls-server-name`, and
/// for mutual TLS `--tls-cert`/`--tls-key`.
public final class TLSClientSecurity: ChannelSecurity {
    let context: NIOSSLContext
    let roots: [Certificate]
    /// The name the server's certificate must carry (DNS name or IP address).
    public let serverName: String

    /// Loads the CA that signed the server's certificate and, for mutual TLS, this client's
    /// certificate and key; `serverName` is what the server's certificate must name.
    public init(caPath: String, serverName: String, certificatePath: String? = nil, keyPath: String? = nil) throws {
        guard (certificatePath == nil) == (keyPath == nil) else {
            throw TLSError.badConfiguration("--tls-cert and --tls-key go together: give both (client-i.pem and client-i.key from `flwr certs`) or neither")
        }
        roots = try PEMFiles.x509(caPath)
        self.serverName = serverName
        var config = TLSConfiguration.makeClientConfiguration()
        config.minimumTLSVersion = .tlsv13
        // CertificateCheck (the custom callback) verifies chain, dates and the name, IP
        // addresses included; NIOSSL's own hostname check would only repeat the last part.
        config.certificateVerification = .noHostnameVerification
        config.trustRoots = .certificates(try PEMFiles.certificates(caPath))
        if let certificatePath, let keyPath {
            config.certificateChain = try PEMFiles.certificates(certificatePath).map { .certificate($0) }
            config.privateKey = .privateKey(try PEMFiles.privateKey(keyPath))
        }
        do { context = try NIOSSLContext(configuration: config) } catch {
            if TLSServerSecurity.isKeyMismatch(error) {
                throw TLSError.keyMismatch(certificate: certificatePath ?? "", key: keyPath ?? "")
            }
            throw TLSError.badConfiguration("cannot set up TLS with --tls-ca \(caPath): \(error)")
        }
    }

    public var summary: String { "TLS 1.3 (server must prove the name \(serverName.debugDescription))" }

    public func secure(_ channel: any Channel) throws {
        let observer = TLSHandshakeObserver(role: .client)
        let note = observer.note
        let roots = self.roots, name = serverName
        // SNI carries host names only; an IP address is checked against the certificate's IP SANs.
        let sni = CertificateCheck.isIPAddress(name) ? nil : name
        let handler = try NIOSSLClientHandler(context: context, serverHostname: sni) { certificates, promise in
            let der = certificates.compactMap { try? $0.toDERBytes() }
            promise.completeWithTask {
                switch await CertificateCheck.verify(presented: der, roots: roots, role: .server(name: name)) {
                case .success:
                    return .certificateVerified
                case .failure(let why):
                    note.failure = why
                    return .failed
                }
            }
        }
        let sync = channel.pipeline.syncOperations
        try sync.addHandler(handler)
        try sync.addHandler(observer)
    }

    public func authorize(_ channel: any Channel) -> PeerAuthorization { .anonymous }
}

/// What the certificate check of one connection found (written on a verification task, read on
/// the channel's event loop).
final class HandshakeNote: Sendable {
    private let state = Mutex<(identity: String?, failure: TLSError?)>((nil, nil))
    var identity: String? {
        get { state.withLock { $0.identity } }
        set { state.withLock { $0.identity = newValue } }
    }
    var failure: TLSError? {
        get { state.withLock { $0.failure } }
        set { state.withLock { $0.failure = newValue } }
    }
}

/// Sits right behind NIOSSL's handler: records the end of the handshake and translates NIOSSL's
/// errors into `TLSError`s (handshake failures) or `WireError.connectionClosed` (a session's TLS
/// stream ending badly, which a client treats like any lost connection and retries).
final class TLSHandshakeObserver: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    enum Role { case server, client }

    let role: Role
    let note = HandshakeNote()
    private(set) var handshakeDone = false

    init(role: Role) { self.role = role }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.fireChannelRead(data)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted? = event as? TLSUserEvent { handshakeDone = true }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.fireErrorCaught(translate(error))
    }

    func translate(_ error: any Error) -> any Error {
        if let failure = note.failure { return failure }
        guard error is NIOSSLError || error is BoringSSLError || error is NIOSSLExtraError else { return error }
        let text = "\(error)"
        switch role {
        case .client:
            if text.contains("CERTIFICATE_REQUIRED") { return TLSError.clientCertificateRequired }
            if let alert = Self.alert(in: text) { return TLSError.rejectedByPeer(alert: alert, ours: "this client's certificate") }
            if !handshakeDone && (text.contains("WRONG_VERSION_NUMBER") || text.contains("PACKET_LENGTH_TOO_LONG")
                                  || text.contains("UNEXPECTED_RECORD") || text.contains("HTTP_REQUEST")) {
                return TLSError.serverNotTLS
            }
        case .server:
            if text.contains("PEER_DID_NOT_RETURN_A_CERTIFICATE") { return TLSError.clientCertificateMissing }
            if !handshakeDone && text.contains("EOF during handshake") {
                return TLSError.handshakeFailed("the peer closed the connection without a TLS handshake (a client without TLS sends nothing and waits for a plain Challenge: give it --tls-ca)")
            }
            if let alert = Self.alert(in: text) { return TLSError.rejectedByPeer(alert: alert, ours: "this server's certificate") }
        }
        if case .uncleanShutdown? = error as? NIOSSLError {
            return WireError.connectionClosed("the peer (the TLS stream ended without close_notify)")
        }
        if handshakeDone { return WireError.connectionClosed("the peer after a TLS error (\(text))") }
        return TLSError.handshakeFailed(text)
    }

    /// The name of a TLS alert in a BoringSSL error text ("SSLV3_ALERT_BAD_CERTIFICATE" → "bad certificate").
    static func alert(in text: String) -> String? {
        for marker in ["SSLV3_ALERT_", "TLSV1_ALERT_", "TLSV13_ALERT_"] {
            guard let range = text.range(of: marker) else { continue }
            let name = text[range.upperBound...].prefix { $0.isLetter || $0 == "_" || $0.isNumber }
            return name.lowercased().replacingOccurrences(of: "_", with: " ")
        }
        return nil
    }
}
