// The handshake's authentication proof, HMAC-SHA256(token, nonce || utf8(clientID)), is computed
// by a crypto library this module does not link: FlowerTLS's `CryptoHandshakeMAC` (swift-crypto).
// On Linux swift-crypto compiles its own copy of BoringSSL, which scripts/fuzz-wire (this module
// alone, with AddressSanitizer) must not build; so the wire asks for the MAC through this hook
// instead of carrying a hand-written SHA-256.

/// Computes and checks the handshake's proof of the shared token.
public protocol HandshakeMAC: Sendable {
    /// HMAC-SHA256(token, nonce || utf8(clientID)).
    func proof(token: String, nonce: [UInt8], clientID: String) -> [UInt8]
    /// Whether `proof` is that MAC, compared in constant time.
    func verify(_ proof: [UInt8], token: String, nonce: [UInt8], clientID: String) -> Bool
}

extension WireError {
    /// An auth token was configured without a `HandshakeMAC` to prove it with.
    package static let tokenWithoutMAC = WireError.security(
        "an auth token is set but no HandshakeMAC computes its proof: set the config's `mac` (FlowerTLS.CryptoHandshakeMAC())")
}
