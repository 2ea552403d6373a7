// The wire handshake's HMAC-SHA256 proof with swift-crypto (FlowerWire/HandshakeMAC.swift says
// why it lives here and not in FlowerWire).
import Crypto
import FlowerWire

/// HMAC-SHA256(token, nonce || utf8(clientID)) from swift-crypto; `verify` compares in constant time.
public struct CryptoHandshakeMAC: HandshakeMAC {
    public init() {}

    public func proof(token: String, nonce: [UInt8], clientID: String) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: nonce + Array(clientID.utf8), using: SymmetricKey(data: Array(token.utf8))))
    }

    public func verify(_ proof: [UInt8], token: String, nonce: [UInt8], clientID: String) -> Bool {
        HMAC<SHA256>.isValidAuthenticationCode(proof, authenticating: nonce + Array(clientID.utf8),
                                               using: SymmetricKey(data: Array(token.utf8)))
    }
}
