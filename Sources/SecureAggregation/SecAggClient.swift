// The client side of SecAgg+ as a state machine with no I/O: each method takes the server's message
// and returns the client's answer, or throws and leaves the state as it was (a refusal).
//
// Protocol: Bell, Bonawitz, Gascón, Lepoint, Raykova, "Secure Single-Server Aggregation with
// (Poly)Logarithmic Overhead", CCS 2020 (SecAgg+: secrets shared with k graph neighbours instead of
// all n − 1 clients), on the round structure of Bonawitz, Ivanov, Kreuter, Marcedone, McMahan, Patel,
// Ramage, Segal, Seth, "Practical Secure Aggregation for Privacy-Preserving Machine Learning", CCS 2017.
//
// Deviations, and why:
// - No signatures and no ConsistencyCheck round (Bonawitz 2017 §4, active-adversary variant): the
//   transport already authenticates clients (mutual TLS on the wire), and this implements the
//   semi-honest-server protection the design asks for, plus per-client refusal of a request for both
//   kinds of share of one peer. A server that tells different clients different stories about who
//   dropped is only bounded by 2t > k (enforced here): it can never gather t shares of both kinds.
// - Shares are over GF(2^61 − 1) in 7-byte chunks (5 elements per 32-byte secret) instead of a
//   256-bit field: a Mersenne prime keeps the arithmetic in UInt64 with no big-integer library.
// - The PRG is AES-256-CTR (see `MaskStream`), keys derived by HKDF-SHA256 bound to round and pair.
import Crypto

public struct SecAggClient: Sendable {
    enum State: String, Sendable {
        case awaitingNeighbourKeys = "awaiting neighbour keys"
        case awaitingShares = "awaiting forwarded shares"
        case readyToMask = "ready to mask its update"
        case awaitingUnmaskRequest = "awaiting the unmask request"
        case finished = "finished"
        case refused = "refused to continue"
    }

    public let setup: SecAggSetup
    var state = State.awaitingNeighbourKeys
    let encryptionKey: Curve25519.KeyAgreement.PrivateKey
    let maskKey: Curve25519.KeyAgreement.PrivateKey
    let selfMaskSeed: [UInt8]
    /// Neighbour index → its public keys (after `shareKeys`).
    var neighbours: [UInt32: SecAggPublicKeys] = [:]
    /// Neighbour index → the shares of its (seed, mask key) this client holds (after `receiveShares`).
    var heldShares: [UInt32: (seed: [UInt64], key: [UInt64])] = [:]

    var me: UInt32 { setup.clientIndex }
    var round: UInt64 { setup.round }

    /// Validates the server's setup (the same parameter rules the server applies) and makes the
    /// round's two key pairs and self-mask seed.
    public init(setup: SecAggSetup) throws(SecAggError) {
        try setup.parameters.validate(numClients: Int(setup.numClients))
        guard setup.clientIndex < setup.numClients else {
            throw .unknownClient(field: "setup.clientIndex", index: setup.clientIndex)
        }
        guard (1...UInt64(SecAggLimits.maxVectorLength)).contains(setup.vectorLength) else {
            throw .invalidParameter(name: "vector length", value: "\(setup.vectorLength)",
                                    reason: "must be in 1...\(SecAggLimits.maxVectorLength)")
        }
        self.setup = setup
        encryptionKey = Curve25519.KeyAgreement.PrivateKey()
        maskKey = Curve25519.KeyAgreement.PrivateKey()
        var rng = SystemRandomNumberGenerator()
        selfMaskSeed = (0..<Shamir.secretByteCount).map { _ in UInt8.random(in: 0...255, using: &rng) }
    }

    /// Round 0 (AdvertiseKeys): the two public keys.
    public var publicKeys: SecAggPublicKeys {
        SecAggPublicKeys(round: round, sender: me, encryptionKey: Array(encryptionKey.publicKey.rawRepresentation),
                         maskKey: Array(maskKey.publicKey.rawRepresentation))
    }

    func expect(_ s: State, _ message: String) throws(SecAggError) {
        guard state == s else { throw .unexpectedMessage(message: message, state: "client \(me) \(state.rawValue)") }
    }

    func checkAddress(round r: UInt64, receiver: UInt32, _ what: String) throws(SecAggError) {
        guard r == round else { throw .wrongRound(expected: round, got: r) }
        guard receiver == me else { throw .wrongParty(field: "\(what).receiver", expected: me, got: receiver) }
    }

    /// Round 1 (ShareKeys): checks the neighbours' keys and returns one encrypted share pair per neighbour.
    public mutating func shareKeys(_ message: SecAggNeighbourKeys) throws(SecAggError) -> SecAggShareKeys {
        try expect(.awaitingNeighbourKeys, "neighbour keys")
        try checkAddress(round: message.round, receiver: message.receiver, "neighbour keys")
        let p = setup.parameters
        let allowed = p.reconstructionThreshold...min(p.numShares, Int(setup.numClients) - 1)
        guard allowed.contains(message.neighbours.count) else {
            throw .countOutOfRange(field: "neighbour keys", count: message.neighbours.count, allowed: allowed)
        }
        var byIndex: [UInt32: SecAggPublicKeys] = [:]
        for n in message.neighbours {
            guard n.round == round else { throw .wrongRound(expected: round, got: n.round) }
            guard n.sender < setup.numClients, n.sender != me else { throw .unknownClient(field: "neighbour keys", index: n.sender) }
            guard byIndex[n.sender] == nil else { throw .duplicate(field: "neighbour keys", index: n.sender) }
            guard n.encryptionKey.count == 32, n.maskKey.count == 32 else {
                throw .malformed(field: "keys of client \(n.sender)", reason: "X25519 public keys are 32 bytes each")
            }
            byIndex[n.sender] = n
        }
        let order = message.neighbours.map(\.sender)
        var rng = SystemRandomNumberGenerator()
        let xs = order.map { UInt64($0) + 1 }
        let seedShares = Shamir.split(secret: selfMaskSeed, threshold: p.reconstructionThreshold, xs: xs, using: &rng)
        let keyShares = Shamir.split(secret: Array(maskKey.rawRepresentation), threshold: p.reconstructionThreshold,
                                     xs: xs, using: &rng)
        var shares: [SecAggEncryptedShare] = []
        shares.reserveCapacity(order.count)
        for (i, v) in order.enumerated() {
            let key = try SecAggKDF.agreedKey(encryptionKey, byIndex[v]?.encryptionKey ?? [], purpose: "share-encryption",
                                              round: round, me, v)
            let ciphertext = try ShareCipher.seal(seedShare: seedShares[i], keyShare: keyShares[i], key: key,
                                                  round: round, sender: me, receiver: v)
            shares.append(SecAggEncryptedShare(sender: me, receiver: v, ciphertext: ciphertext))
        }
        neighbours = byIndex
        state = .awaitingShares
        return SecAggShareKeys(round: round, sender: me, shares: shares)
    }

    /// Between rounds 1 and 2: decrypts the shares the neighbours sent. Those neighbours, and only
    /// those, are the ones this client's update is pairwise-masked with.
    public mutating func receiveShares(_ message: SecAggForwardedShares) throws(SecAggError) {
        try expect(.awaitingShares, "forwarded shares")
        try checkAddress(round: message.round, receiver: message.receiver, "forwarded shares")
        let allowed = setup.parameters.reconstructionThreshold...neighbours.count
        guard allowed.contains(message.shares.count) else {
            throw .countOutOfRange(field: "forwarded shares", count: message.shares.count, allowed: allowed)
        }
        var held: [UInt32: (seed: [UInt64], key: [UInt64])] = [:]
        for share in message.shares {
            guard share.receiver == me else { throw .wrongParty(field: "share.receiver", expected: me, got: share.receiver) }
            guard let peer = neighbours[share.sender] else { throw .unknownClient(field: "forwarded share sender", index: share.sender) }
            guard held[share.sender] == nil else { throw .duplicate(field: "forwarded shares", index: share.sender) }
            let key = try SecAggKDF.agreedKey(encryptionKey, peer.encryptionKey, purpose: "share-encryption",
                                              round: round, me, share.sender)
            held[share.sender] = try ShareCipher.open(share.ciphertext, key: key, round: round,
                                                      sender: share.sender, receiver: me)
        }
        heldShares = held
        state = .readyToMask
    }

    /// Round 2 (MaskedInputCollection): clips, quantises and weights `update`, appends the weight, and
    /// adds the self mask and the pairwise masks, all mod m. The weight is min(numExamples, maxWeight).
    public mutating func maskedInput(update: [Float], numExamples: Int) throws(SecAggError) -> SecAggMaskedInput {
        try expect(.readyToMask, "masking the update")
        let length = Int(setup.vectorLength)
        guard update.count == length else { throw .updateLengthMismatch(expected: length, got: update.count) }
        if let bad = update.firstIndex(where: { $0.isNaN }) { throw .nonFiniteUpdate(index: bad) }
        let p = setup.parameters
        let weight = UInt32(min(UInt64(max(numExamples, 0)), p.maxWeight))
        let quantizer = SecAggQuantizer(parameters: p)
        var vector = [UInt32](repeating: 0, count: length + 1)
        // Stochastic rounding draws its uniforms from a fresh AES-CTR stream (fast and unpredictable).
        try vector.withUnsafeMutableBufferPointer { (v: inout UnsafeMutableBufferPointer<UInt32>) throws(SecAggError) in
            let out = v
            try update.withUnsafeBufferPointer { (x: UnsafeBufferPointer<Float>) throws(SecAggError) in
                try MaskStream.forEachBlock(key: SymmetricKey(size: .bits256), count: length) { offset, raw in
                    for i in 0..<(raw.count / 4) {
                        let u = UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))
                        out[offset + i] = quantizer.quantize(x[offset + i], uniform: u) &* weight
                    }
                }
            }
        }
        vector[length] = weight
        try MaskStream.apply(key: SecAggKDF.selfMaskKey(seed: selfMaskSeed, round: round, owner: me), to: &vector, subtract: false)
        for v in heldShares.keys.sorted() {
            guard let peer = neighbours[v] else { continue }
            let key = try SecAggKDF.agreedKey(maskKey, peer.maskKey, purpose: "pairwise-mask", round: round, me, v)
            try MaskStream.apply(key: key, to: &vector, subtract: me > v)
        }
        if p.modulusRange < 1 << 32 {
            let m = UInt32(p.modulusRange - 1)
            for i in vector.indices { vector[i] &= m }
        }
        state = .awaitingUnmaskRequest
        return SecAggMaskedInput(round: round, sender: me, vector: vector)
    }

    /// Round 3 (Unmasking): the seed shares of neighbours the server says answered and the key shares
    /// of those it says dropped. Refuses (for good, this round) a request naming one peer in both lists.
    public mutating func unmask(_ request: SecAggUnmaskRequest) throws(SecAggError) -> SecAggUnmaskResponse {
        try expect(.awaitingUnmaskRequest, "unmask request")
        try checkAddress(round: request.round, receiver: request.receiver, "unmask request")
        let total = request.seedSharesOf.count + request.keySharesOf.count
        guard total <= 2 * heldShares.count else {
            throw .countOutOfRange(field: "unmask request", count: total, allowed: 0...heldShares.count)
        }
        let seeds = Set(request.seedSharesOf)
        if let both = request.keySharesOf.first(where: { seeds.contains($0) }) {
            state = .refused
            throw .bothSharesRequested(peer: both)
        }
        guard total <= heldShares.count else {
            throw .countOutOfRange(field: "unmask request", count: total, allowed: 0...heldShares.count)
        }
        var seen = Set<UInt32>()
        var seedShares: [SecAggShare] = [], keyShares: [SecAggShare] = []
        for (list, isSeed) in [(request.seedSharesOf, true), (request.keySharesOf, false)] {
            for owner in list {
                guard let held = heldShares[owner] else { throw .unknownClient(field: "unmask request", index: owner) }
                guard seen.insert(owner).inserted else { throw .duplicate(field: "unmask request", index: owner) }
                if isSeed { seedShares.append(SecAggShare(owner: owner, values: held.seed)) }
                else { keyShares.append(SecAggShare(owner: owner, values: held.key)) }
            }
        }
        state = .finished
        return SecAggUnmaskResponse(round: round, sender: me, seedShares: seedShares, keyShares: keyShares)
    }
}
