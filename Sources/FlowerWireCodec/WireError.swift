// WireError: every way a FlowerWire connection can fail, each with what to do about it.

/// Why the server turned a client away (proto `Refusal.Reason`).
public enum RefusalReason: Sendable, Equatable, CustomStringConvertible {
    case unspecified, versionMismatch, badCredentials, duplicateIdentity, serverFull, protocolError

    public var description: String {
        switch self {
        case .unspecified: return "unspecified"
        case .versionMismatch: return "version mismatch"
        case .badCredentials: return "bad credentials"
        case .duplicateIdentity: return "duplicate identity"
        case .serverFull: return "server full"
        case .protocolError: return "protocol error"
        }
    }
}

/// A FlowerWire failure: the bad value and the remedy are in `description`.
public enum WireError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A frame header announced a payload larger than the receiver's limit.
    case frameTooLarge(length: Int, limit: Int)
    /// A frame larger than the small limit of the connection's state (before the handshake, or
    /// between calls, where only Hello/Goodbye are legal) was refused before buffering.
    case frameRefused(length: Int, limit: Int, state: String)
    /// A compressed frame arrived although compression was never negotiated.
    case compressionNotNegotiated
    /// A frame header had flag bits other than bit 0 set.
    case reservedFlags(UInt8)
    /// The peer closed the connection in the middle of a frame.
    case truncatedFrame(received: Int, expected: Int)
    /// The compressed payload could not be inflated (corrupt, or larger than the limit).
    case badCompression(String)
    /// The payload is not a valid protobuf message of the expected envelope.
    case malformedMessage(String)
    /// A message broke one of the protocol's bounds (proto/README.md, "Limits"): too many map
    /// entries, tensors or shape dimensions, a string too long, a number out of range, or more
    /// decoder memory than the message's size justifies.
    case limitExceeded(String)
    /// A compressed frame could not get room in the decompression budget shared by all
    /// connections (`InflateBudget`); it is refused rather than buffered.
    case decompressionBudgetExhausted(needed: Int, budget: Int)
    /// A valid message arrived that this side did not expect now (wrong kind or order).
    case unexpectedMessage(got: String, expected: String)
    /// A tensor or parameter layout that cannot be right (data length vs shape, duplicates, ...).
    case badParameters(String)
    /// A value this side cannot send (e.g. a string with a NUL byte, or a frame over the peer's limit).
    case cannotEncode(String)
    /// The server refused the client.
    case refused(reason: RefusalReason, message: String)
    /// A deadline passed while waiting for `operation`.
    case timeout(operation: String, seconds: Double)
    /// The peer closed the connection (cleanly, between frames).
    case connectionClosed(String)
    /// A system call failed.
    case system(call: String, errno: Int32, detail: String)
    /// The host name could not be resolved.
    case resolve(host: String, detail: String)
    /// The client gave up connecting after its retry budget.
    case unreachable(host: String, port: Int, attempts: Int, lastError: String)
    /// A security mismatch or misconfiguration: one side speaks TLS and the other plain
    /// FlowerWire, or a token without a MAC (the message says which and what to add).
    case security(String)
    /// The server ended the federation with an error (Finish with `failed`).
    case serverFailed(roundsCompleted: Int, reason: String)
    /// A call was made on a client connection that is already closed or busy.
    case notReady(String)

    public var description: String {
        switch self {
        case .frameTooLarge(let length, let limit):
            return "frame of \(length) bytes exceeds the limit of \(limit) bytes (--max-frame-mb \(Self.mib(limit))); raise --max-frame-mb on both sides or shrink the model"
        case .frameRefused(let length, let limit, let state):
            return "frame of \(length) bytes refused \(state): at most \(limit) bytes are accepted there (only Hello or Goodbye are legal); the peer is not a compatible flwr or is hostile"
        case .compressionNotNegotiated:
            return "compressed frame although compression was not negotiated (Welcome.compression is NONE); the peer broke proto/README.md \"Compression\""
        case .reservedFlags(let flags):
            return "frame flags 0x\(String(flags, radix: 16)) set reserved bits (only bit 0, compression, is defined); the peer speaks another protocol or is corrupt"
        case .truncatedFrame(let received, let expected):
            return "connection closed mid-frame after \(received) of \(expected) bytes; the peer crashed or the network dropped: it may reconnect"
        case .badCompression(let why):
            return "compressed frame payload rejected: \(why)"
        case .malformedMessage(let why):
            return "malformed protobuf message: \(why); the peer is not a compatible flwr (see proto/README.md)"
        case .limitExceeded(let why):
            return "message exceeds a protocol limit: \(why) (see proto/README.md, \"Limits\")"
        case .decompressionBudgetExhausted(let needed, let budget):
            return "compressed frame refused: inflating it needs \(needed) more bytes of the \(budget)-byte decompression budget shared by all connections, which other frames hold now; the peer may retry, or send it uncompressed"
        case .unexpectedMessage(let got, let expected):
            return "unexpected \(got) where \(expected) was expected; the peer broke the session order in proto/README.md"
        case .badParameters(let why):
            return "bad parameters: \(why)"
        case .cannotEncode(let why):
            return "cannot send: \(why)"
        case .refused(let reason, let message):
            return "server refused the client (\(reason)): \(message)"
        case .timeout(let operation, let seconds):
            return "timed out after \(seconds) s waiting for \(operation); the peer is slow or gone: raise the timeout or check it"
        case .connectionClosed(let who):
            return "connection closed by \(who)"
        case .system(let call, let errno, let detail):
            return "\(call) failed: \(detail) (errno \(errno))"
        case .resolve(let host, let detail):
            return "cannot resolve host \(host): \(detail); check --server and DNS"
        case .security(let message):
            return message
        case .unreachable(let host, let port, let attempts, let lastError):
            return "could not reach a flwr server at \(host):\(port) after \(attempts) attempts (last error: \(lastError)); start the server or fix --server"
        case .serverFailed(let rounds, let reason):
            return "the server stopped the federation with an error after \(rounds) completed rounds: \(reason); see the server's log"
        case .notReady(let why):
            return why
        }
    }

    package static func mib(_ bytes: Int) -> String {
        bytes % (1 << 20) == 0 ? "\(bytes >> 20)" : String(Double(bytes) / Double(1 << 20))
    }
}

extension WireError {
    /// True for the first bytes of a TLS handshake record (content type 22, version 3.x): what a
    /// TLS client sends to a plain FlowerWire server.
    package static func looksLikeTLS(_ bytes: UnsafeRawBufferPointer) -> Bool {
        bytes.count >= 3 && bytes[0] == 0x16 && bytes[1] == 0x03 && bytes[2] <= 0x04
    }
}
