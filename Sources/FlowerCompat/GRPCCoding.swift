// grpc-swift's message (de)serializers for Flower's Join stream, over CompatCodec (libprotobuf-c).
// The server's deserializer does not decode: the stream's reader does, once a large answer has a
// payload slot (FlowerCompatServer.swift). A deserializer never throws on bad bytes: it hands the failure to the stream's owner, which
// logs what was wrong and ends the stream (a thrown error would reach the peer as a bare
// "failed to deserialize" status and the server log would not say why).
import GRPCCore

/// `flwr.proto.FlowerService/Join`: `stream ClientMessage` → `stream ServerMessage`.
public enum FlowerService {
    public static let join = MethodDescriptor(fullyQualifiedService: "flwr.proto.FlowerService", method: "Join")
}

/// Already-encoded protobuf bytes (the server proxy encodes each instruction itself, to count them).
struct EncodedSerializer: MessageSerializer {
    func serialize<Bytes: GRPCContiguousBytes>(_ message: [UInt8]) throws -> Bytes { Bytes(message) }
}

/// A ClientMessage as it arrived: its protobuf bytes, still undecoded, and their size. The Join
/// stream's reader decodes it once it holds a payload slot for it (answers of at least
/// `PayloadSlots.threshold` bytes) or at once (smaller ones).
struct IncomingClientMessage: @unchecked Sendable {
    // The transport's own bytes (grpc-swift-nio-transport hands over a `ByteBuffer` wrapper, a
    // value type), kept rather than copied; only read through `decode()`.
    private let raw: any GRPCContiguousBytes
    /// Protobuf bytes of the message.
    let bytes: Int

    init(_ raw: some GRPCContiguousBytes) {
        self.raw = raw
        bytes = raw.count
    }

    /// The ClientMessage, or why it could not be decoded.
    func decode() -> Result<FlowerClientMessage, CompatError> {
        raw.withUnsafeBytes { CompatCodec.decodeClientMessage($0) }
    }
}

struct ClientMessageSerializer: MessageSerializer {
    func serialize<Bytes: GRPCContiguousBytes>(_ message: FlowerClientMessage) throws -> Bytes {
        Bytes(try CompatCodec.encode(message))
    }
}

struct ClientMessageDeserializer: MessageDeserializer {
    func deserialize<Bytes: GRPCContiguousBytes>(_ bytes: Bytes) throws -> IncomingClientMessage {
        IncomingClientMessage(bytes)
    }
}

struct ServerMessageDeserializer: MessageDeserializer {
    func deserialize<Bytes: GRPCContiguousBytes>(_ bytes: Bytes) throws -> Result<FlowerServerMessage, CompatError> {
        bytes.withUnsafeBytes { CompatCodec.decodeServerMessage($0) }
    }
}
