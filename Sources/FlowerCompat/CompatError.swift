/// What can go wrong when speaking Flower's legacy protocol; each description names the bad
/// value and what to do about it.
public enum CompatError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A protobuf message that libprotobuf-c could not decode, or whose values break our limits.
    case malformedMessage(String)
    /// A tensor whose `.npy` bytes are unreadable, of an unsupported dtype, or the wrong size.
    case badTensor(index: Int, detail: String)
    /// Parameters whose count or shapes differ from the layout they must follow.
    case layoutMismatch(String)
    /// A message the protocol does not allow at this point (e.g. FitRes while EvaluateRes was due).
    case unexpectedMessage(got: String, expected: String)
    /// A result sent while no instruction was pending.
    case unsolicited(String)
    /// The peer did not answer within the call's deadline.
    case timeout(String)
    /// The stream is gone (closed by either side, or ended after a protocol error).
    case disconnected(String)
    /// A message we cannot encode (e.g. larger than the peer's message limit).
    case cannotEncode(String)

    public var description: String {
        switch self {
        case .malformedMessage(let why):
            return "malformed Flower message: \(why)"
        case .badTensor(let i, let detail):
            return "tensor #\(i): \(detail)"
        case .layoutMismatch(let why):
            return "parameter layout mismatch: \(why)"
        case .unexpectedMessage(let got, let expected):
            return "protocol error: got \(got) while \(expected) was expected (Flower's Join protocol answers each instruction with exactly one matching result)"
        case .unsolicited(let kind):
            return "protocol error: got \(kind) while no instruction was pending (Flower's Join protocol answers each instruction with exactly one result)"
        case .timeout(let what):
            return "timed out: \(what)"
        case .disconnected(let why):
            return "disconnected: \(why)"
        case .cannotEncode(let why):
            return "cannot encode: \(why)"
        }
    }
}
