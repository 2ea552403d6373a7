/// Why a secure-aggregation step refused a message or could not go on, with what to change.
public enum SecAggError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A round parameter is out of range; `reason` says which range and how to fix it.
    case invalidParameter(name: String, value: String, reason: String)
    /// A message arrived in a state that does not take it (out of order, or a replay of one already taken).
    case unexpectedMessage(message: String, state: String)
    /// A message is for another round (stale, replayed from an earlier round, or from a later one).
    case wrongRound(expected: UInt64, got: UInt64)
    /// A message names a sender or receiver other than the one this state machine talks to.
    case wrongParty(field: String, expected: UInt32, got: UInt32)
    /// A client index that is not in the round, or not a neighbour where one is needed.
    case unknownClient(field: String, index: UInt32)
    /// The same client appears twice where each may appear once (a replay or a forged list).
    case duplicate(field: String, index: UInt32)
    /// A list is longer or shorter than the protocol allows; checked before anything is allocated.
    case countOutOfRange(field: String, count: Int, allowed: ClosedRange<Int>)
    /// A fixed-size field has the wrong size or a value outside its domain.
    case malformed(field: String, reason: String)
    /// An encrypted share failed AES-GCM authentication: tampered, for another pair, or from another round.
    case shareAuthenticationFailed(sender: UInt32)
    /// The server asked this client for both the self-mask seed share and the mask-key share of one
    /// peer, which would let it unmask that peer's update.
    case bothSharesRequested(peer: UInt32)
    /// The update holds NaN at `index`; it cannot be clipped or quantised.
    case nonFiniteUpdate(index: Int)
    /// The update's length is not the round's vector length.
    case updateLengthMismatch(expected: Int, got: Int)
    /// Too few clients are left in `phase` for the round to go on.
    case tooFewClients(phase: String, remaining: Int, needed: Int)
    /// `client`'s secrets have fewer live holders than the threshold: the round is aborted and nothing is unmasked.
    case tooFewHolders(client: UInt32, phase: String, holders: Int, threshold: Int)
    /// The shares of `client`'s secret did not reconstruct a consistent value (a holder sent a wrong share).
    case reconstructionFailed(client: UInt32, secret: String)
    /// The round already failed with `reason`; the state machine takes no further messages.
    case roundAborted(reason: String)
    /// swift-crypto refused an operation (a public key that is not a valid X25519 point, for example).
    case crypto(String)

    public var description: String {
        switch self {
        case let .invalidParameter(name, value, reason):
            return "secure aggregation: \(name) = \(value) is invalid: \(reason)"
        case let .unexpectedMessage(message, state):
            return "secure aggregation: \(message) is not expected while \(state) (out of order or replayed); the sender must follow the round's order: keys, shares, masked input, unmasking"
        case let .wrongRound(expected, got):
            return "secure aggregation: message for round \(got) refused in round \(expected) (replayed or stale)"
        case let .wrongParty(field, expected, got):
            return "secure aggregation: \(field) is client \(got), expected client \(expected)"
        case let .unknownClient(field, index):
            return "secure aggregation: \(field) names client \(index), which is not a participant in that role this round"
        case let .duplicate(field, index):
            return "secure aggregation: \(field) names client \(index) twice (replayed or forged)"
        case let .countOutOfRange(field, count, allowed):
            return "secure aggregation: \(field) has \(count) entries, allowed \(allowed.lowerBound)...\(allowed.upperBound)"
        case let .malformed(field, reason):
            return "secure aggregation: \(field) is malformed: \(reason)"
        case let .shareAuthenticationFailed(sender):
            return "secure aggregation: the encrypted share from client \(sender) failed authentication (tampered, misaddressed, or from another round)"
        case let .bothSharesRequested(peer):
            return "secure aggregation: refused: the server asked for both the self-mask share and the mask-key share of client \(peer), which would reveal its update"
        case let .nonFiniteUpdate(index):
            return "secure aggregation: the update is NaN at index \(index); fix the training step before sending"
        case let .updateLengthMismatch(expected, got):
            return "secure aggregation: the update has \(got) values, the round expects \(expected) (the client's model differs from the server's)"
        case let .tooFewClients(phase, remaining, needed):
            return "secure aggregation: only \(remaining) clients left after \(phase), \(needed) needed; round aborted, nothing unmasked; sample more clients or lower reconstruction_threshold"
        case let .tooFewHolders(client, phase, holders, threshold):
            return "secure aggregation: after \(phase) client \(client) has \(holders) live share holders, \(threshold) needed (at most num_shares − reconstruction_threshold neighbours may drop); round aborted, nothing unmasked; raise num_shares or lower reconstruction_threshold"
        case let .reconstructionFailed(client, secret):
            return "secure aggregation: the shares of client \(client)'s \(secret) do not reconstruct a consistent value (a holder sent a wrong share); round aborted"
        case let .roundAborted(reason):
            return "secure aggregation: the round already failed (\(reason)); start a new round"
        case let .crypto(message):
            return "secure aggregation: cryptographic operation failed: \(message)"
        }
    }
}
