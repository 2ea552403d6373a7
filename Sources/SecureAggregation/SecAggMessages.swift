// The messages of one SecAgg+ round, as plain values. The wire carries each one as a frame
// (proto/secagg.md lists fields, order and limits); every count in them is checked by the receiving
// state machine against `SecAggLimits` and the round's parameters before it is used.
//
// Order (Bonawitz et al. 2017, Fig. 4, rounds 0–3 without the optional consistency check):
//   server → client  SecAggSetup            (who, which round, parameters, vector length)
//   client → server  SecAggPublicKeys       (AdvertiseKeys)
//   server → client  SecAggNeighbourKeys    (the keys of the client's neighbours on the graph)
//   client → server  SecAggShareKeys        (one encrypted share per neighbour)
//   server → client  SecAggForwardedShares  (the shares addressed to the client)
//   client → server  SecAggMaskedInput      (MaskedInputCollection)
//   server → client  SecAggUnmaskRequest    (whose seed share, whose key share)
//   client → server  SecAggUnmaskResponse   (Unmasking)

/// Starts a round for one client: its index among the round's clients and what to mask.
public struct SecAggSetup: Sendable, Equatable {
    /// Round identifier; every later message carries it and is refused in another round.
    public var round: UInt64
    /// This client's index, in 0..<numClients.
    public var clientIndex: UInt32
    /// Clients sampled for the round.
    public var numClients: UInt32
    /// Model values in the update (the masked vector has one more: the weight).
    public var vectorLength: UInt64
    public var parameters: SecAggParameters

    public init(round: UInt64, clientIndex: UInt32, numClients: UInt32, vectorLength: UInt64, parameters: SecAggParameters) {
        self.round = round
        self.clientIndex = clientIndex
        self.numClients = numClients
        self.vectorLength = vectorLength
        self.parameters = parameters
    }
}

/// A client's two X25519 public keys (raw, 32 bytes each): c for share encryption, s for pairwise masks.
public struct SecAggPublicKeys: Sendable, Equatable {
    public var round: UInt64
    public var sender: UInt32
    public var encryptionKey: [UInt8]
    public var maskKey: [UInt8]

    public init(round: UInt64, sender: UInt32, encryptionKey: [UInt8], maskKey: [UInt8]) {
        self.round = round
        self.sender = sender
        self.encryptionKey = encryptionKey
        self.maskKey = maskKey
    }
}

/// The public keys of the receiver's neighbours (at most k of them).
public struct SecAggNeighbourKeys: Sendable, Equatable {
    public var round: UInt64
    public var receiver: UInt32
    public var neighbours: [SecAggPublicKeys]

    public init(round: UInt64, receiver: UInt32, neighbours: [SecAggPublicKeys]) {
        self.round = round
        self.receiver = receiver
        self.neighbours = neighbours
    }
}

/// One share pair (self-mask seed, mask key) from `sender` for `receiver`, AES-256-GCM encrypted under
/// their agreed key with (protocol, round, sender, receiver) as associated data. `ciphertext` is
/// nonce (12) ‖ encrypted 80-byte payload ‖ tag (16): exactly `byteCount` bytes.
public struct SecAggEncryptedShare: Sendable, Equatable {
    public static let byteCount = 12 + 2 * Shamir.elementsPerShare * 8 + 16
    public var sender: UInt32
    public var receiver: UInt32
    public var ciphertext: [UInt8]

    public init(sender: UInt32, receiver: UInt32, ciphertext: [UInt8]) {
        self.sender = sender
        self.receiver = receiver
        self.ciphertext = ciphertext
    }
}

/// A client's shares, one per neighbour, for the server to forward.
public struct SecAggShareKeys: Sendable, Equatable {
    public var round: UInt64
    public var sender: UInt32
    public var shares: [SecAggEncryptedShare]

    public init(round: UInt64, sender: UInt32, shares: [SecAggEncryptedShare]) {
        self.round = round
        self.sender = sender
        self.shares = shares
    }
}

/// The shares addressed to `receiver` by those of its neighbours that sent theirs.
public struct SecAggForwardedShares: Sendable, Equatable {
    public var round: UInt64
    public var receiver: UInt32
    public var shares: [SecAggEncryptedShare]

    public init(round: UInt64, receiver: UInt32, shares: [SecAggEncryptedShare]) {
        self.round = round
        self.receiver = receiver
        self.shares = shares
    }
}

/// The masked, quantised, weighted update: vectorLength + 1 values in Z_m (the last is the weight).
public struct SecAggMaskedInput: Sendable, Equatable {
    public var round: UInt64
    public var sender: UInt32
    public var vector: [UInt32]

    public init(round: UInt64, sender: UInt32, vector: [UInt32]) {
        self.round = round
        self.sender = sender
        self.vector = vector
    }
}

/// Which shares the server needs from `receiver`: the self-mask seed share of each neighbour that sent
/// its masked input, the mask-key share of each neighbour that did not. Never both for one peer.
public struct SecAggUnmaskRequest: Sendable, Equatable {
    public var round: UInt64
    public var receiver: UInt32
    public var seedSharesOf: [UInt32]
    public var keySharesOf: [UInt32]

    public init(round: UInt64, receiver: UInt32, seedSharesOf: [UInt32], keySharesOf: [UInt32]) {
        self.round = round
        self.receiver = receiver
        self.seedSharesOf = seedSharesOf
        self.keySharesOf = keySharesOf
    }
}

/// One decrypted share: the five field elements of `owner`'s secret at the sender's x-coordinate.
public struct SecAggShare: Sendable, Equatable {
    public var owner: UInt32
    public var values: [UInt64]

    public init(owner: UInt32, values: [UInt64]) {
        self.owner = owner
        self.values = values
    }
}

/// The shares a client reveals in answer to a `SecAggUnmaskRequest`.
public struct SecAggUnmaskResponse: Sendable, Equatable {
    public var round: UInt64
    public var sender: UInt32
    public var seedShares: [SecAggShare]
    public var keyShares: [SecAggShare]

    public init(round: UInt64, sender: UInt32, seedShares: [SecAggShare], keyShares: [SecAggShare]) {
        self.round = round
        self.sender = sender
        self.seedShares = seedShares
        self.keyShares = keyShares
    }
}

/// Payload bytes of each message: the sum of its fields at their fixed widths (u64 round, u32 indices,
/// raw key and ciphertext bytes, u32 vector entries, u64 share elements), without the frame header
/// and per-field tags (a few bytes per field or list entry in protobuf).
public enum SecAggPayloadBytes {
    public static func of(_ m: SecAggPublicKeys) -> Int { 8 + 4 + m.encryptionKey.count + m.maskKey.count }
    public static func of(_ m: SecAggNeighbourKeys) -> Int { 8 + 4 + m.neighbours.reduce(0) { $0 + of($1) - 8 } }
    public static func of(_ m: SecAggShareKeys) -> Int { 8 + 4 + m.shares.reduce(0) { $0 + 8 + $1.ciphertext.count } }
    public static func of(_ m: SecAggForwardedShares) -> Int { 8 + 4 + m.shares.reduce(0) { $0 + 8 + $1.ciphertext.count } }
    public static func of(_ m: SecAggMaskedInput) -> Int { 8 + 4 + 4 * m.vector.count }
    public static func of(_ m: SecAggUnmaskRequest) -> Int { 8 + 4 + 4 * (m.seedSharesOf.count + m.keySharesOf.count) }
    public static func of(_ m: SecAggUnmaskResponse) -> Int {
        8 + 4 + (m.seedShares.count + m.keyShares.count) * (4 + 8 * Shamir.elementsPerShare)
    }
}
