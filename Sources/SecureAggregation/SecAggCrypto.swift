// Key agreement, key derivation, share encryption and the mask PRG, all from swift-crypto.
import Crypto
import Foundation

/// Domain separation for every derived key: HKDF-SHA256 with this salt and an info string naming the
/// purpose, the round and the two clients (smaller index first), so no key serves two purposes,
/// two rounds or two pairs.
enum SecAggKDF {
    static let salt = Array("flwr-secagg+/v1".utf8)

    static func info(_ purpose: String, round: UInt64, _ a: UInt32, _ b: UInt32) -> [UInt8] {
        var out = Array(purpose.utf8)
        out.append(0)
        withUnsafeBytes(of: round.littleEndian) { out.append(contentsOf: $0) }
        withUnsafeBytes(of: min(a, b).littleEndian) { out.append(contentsOf: $0) }
        withUnsafeBytes(of: max(a, b).littleEndian) { out.append(contentsOf: $0) }
        return out
    }

    /// The 256-bit key agreed by `mine` and `theirs` (X25519, then HKDF) for `purpose`.
    static func agreedKey(_ mine: Curve25519.KeyAgreement.PrivateKey, _ theirs: [UInt8], purpose: String,
                          round: UInt64, _ a: UInt32, _ b: UInt32) throws(SecAggError) -> SymmetricKey {
        do {
            let publicKey = try Curve25519.KeyAgreement.PublicKey(rawRepresentation: theirs)
            let secret = try mine.sharedSecretFromKeyAgreement(with: publicKey)
            return secret.hkdfDerivedSymmetricKey(using: SHA256.self, salt: salt,
                                                  sharedInfo: info(purpose, round: round, a, b), outputByteCount: 32)
        } catch {
            throw .crypto("X25519 agreement with client \(a == b ? a : max(a, b)) failed: \(error)")
        }
    }

    /// The self-mask stream key from a client's 32-byte seed.
    static func selfMaskKey(seed: [UInt8], round: UInt64, owner: UInt32) -> SymmetricKey {
        HKDF<SHA256>.deriveKey(inputKeyMaterial: SymmetricKey(data: seed), salt: salt,
                               info: info("self-mask", round: round, owner, owner), outputByteCount: 32)
    }
}

/// Encryption of one share pair for one neighbour (Bonawitz et al. use authenticated encryption under
/// the agreed key c_uv; we use AES-256-GCM with a random nonce and bind protocol, round, sender and
/// receiver as associated data, so a share cannot be replayed into another round or redirected).
enum ShareCipher {
    static func associatedData(round: UInt64, sender: UInt32, receiver: UInt32) -> [UInt8] {
        var out = Array("flwr-secagg+/v1 share".utf8)
        withUnsafeBytes(of: round.littleEndian) { out.append(contentsOf: $0) }
        withUnsafeBytes(of: sender.littleEndian) { out.append(contentsOf: $0) }
        withUnsafeBytes(of: receiver.littleEndian) { out.append(contentsOf: $0) }
        return out
    }

    static func seal(seedShare: [UInt64], keyShare: [UInt64], key: SymmetricKey,
                     round: UInt64, sender: UInt32, receiver: UInt32) throws(SecAggError) -> [UInt8] {
        var plain = [UInt8]()
        plain.reserveCapacity(2 * Shamir.elementsPerShare * 8)
        for v in seedShare + keyShare { withUnsafeBytes(of: v.littleEndian) { plain.append(contentsOf: $0) } }
        do {
            let box = try AES.GCM.seal(plain, using: key,
                                       authenticating: associatedData(round: round, sender: sender, receiver: receiver))
            guard let combined = box.combined else { throw SecAggError.crypto("AES-GCM produced no combined form") }
            return Array(combined)
        } catch {
            throw .crypto("sealing a share for client \(receiver): \(error)")
        }
    }

    /// The (seed share, key share) in `ciphertext`, or `.shareAuthenticationFailed` if it does not open
    /// under `key` with this round, sender and receiver.
    static func open(_ ciphertext: [UInt8], key: SymmetricKey, round: UInt64, sender: UInt32,
                     receiver: UInt32) throws(SecAggError) -> (seed: [UInt64], key: [UInt64]) {
        guard ciphertext.count == SecAggEncryptedShare.byteCount else {
            throw .malformed(field: "share from client \(sender)",
                             reason: "\(ciphertext.count) bytes, expected \(SecAggEncryptedShare.byteCount)")
        }
        let plain: Data
        do {
            let box = try AES.GCM.SealedBox(combined: ciphertext)
            plain = try AES.GCM.open(box, using: key,
                                     authenticating: associatedData(round: round, sender: sender, receiver: receiver))
        } catch {
            throw .shareAuthenticationFailed(sender: sender)
        }
        let values: [UInt64] = plain.withUnsafeBytes { raw in
            (0..<(raw.count / 8)).map { UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * $0, as: UInt64.self)) }
        }
        guard values.count == 2 * Shamir.elementsPerShare, values.allSatisfy({ $0 < Field61.p }) else {
            throw .malformed(field: "share from client \(sender)", reason: "a share element is not below 2^61 − 1")
        }
        return (Array(values[..<Shamir.elementsPerShare]), Array(values[Shamir.elementsPerShare...]))
    }
}

/// The mask PRG: AES-256 in counter mode, keyed by a derived 256-bit key. The keystream is taken as
/// the AES-GCM ciphertext of zeros (GCM encrypts with CTR from inc32(J0), NIST SP 800-38D §7.1; the tag
/// is discarded), one 64 KiB block per nonce, the nonce being the block number, because swift-crypto's
/// `Crypto` module exposes no bare CTR mode. Each key generates exactly one stream.
enum MaskStream {
    static let blockBytes = 1 << 16
    static let zeros = [UInt8](repeating: 0, count: blockBytes)

    /// Calls `body(offset, words)` with consecutive keystream words (little-endian UInt32) covering
    /// `count` words, where `offset` is the index of `words[0]` in the stream.
    static func forEachBlock(key: SymmetricKey, count: Int,
                             _ body: (Int, UnsafeRawBufferPointer) -> Void) throws(SecAggError) {
        var offset = 0
        var block: UInt64 = 0
        while offset < count {
            let words = min(blockBytes / 4, count - offset)
            var nonceBytes = [UInt8](repeating: 0, count: 12)
            withUnsafeBytes(of: block.littleEndian) { for i in 0..<8 { nonceBytes[i] = $0[i] } }
            do {
                let nonce = try AES.GCM.Nonce(data: nonceBytes)
                let box = try AES.GCM.seal(zeros[0..<(4 * words)], using: key, nonce: nonce)
                box.ciphertext.withUnsafeBytes { body(offset, $0) }
            } catch {
                throw .crypto("mask generation: \(error)")
            }
            offset += words
            block += 1
        }
    }

    /// vector[i] += stream[i] (or −=, when `subtract`), wrapping in Z_{2^32}.
    static func apply(key: SymmetricKey, to vector: inout [UInt32], subtract: Bool) throws(SecAggError) {
        let count = vector.count
        try vector.withUnsafeMutableBufferPointer { (v: inout UnsafeMutableBufferPointer<UInt32>) throws(SecAggError) in
            let base = v
            try forEachBlock(key: key, count: count) { offset, raw in
                let n = raw.count / 4
                if subtract {
                    for i in 0..<n { base[offset + i] &-= UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)) }
                } else {
                    for i in 0..<n { base[offset + i] &+= UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)) }
                }
            }
        }
    }
}
