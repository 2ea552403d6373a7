// grpc-swift's message (de)serializers for Flower's Join stream, over CompatCodec (libprotobuf-c).
// A deserializer never throws on bad bytes: it hands the failure to the stream's owner, which
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

/// A decoded ClientMessage (or why it could not be decoded) and its size on the wire.
struct IncomingClientMessage: Sendable {
    let message: Result<FlowerClientMessage, CompatError>
    let bytes: Int
}

struct ClientMessageSerializer: MessageSerializer {
    func serialize<Bytes: GRPCContiguousBytes>(_ message: FlowerClientMessage) throws -> Bytes {
        Bytes(try CompatCodec.encode(message))
    }
}

struct ClientMessageDeserializer: MessageDeserializer {
    func deserialize<Bytes: GRPCContiguousBytes>(_ bytes: Bytes) throws -> IncomingClientMessage {
        IncomingClientMessage(message: bytes.withUnsafeBytes { CompatCodec.decodeClientMessage($0) }, bytes: bytes.count)
    }
}

struct ServerMessageDeserializer: MessageDeserializer {
    func deserialize<Bytes: GRPCContiguousBytes>(_ bytes: Bytes) throws -> Result<FlowerServerMessage, CompatError> {
        bytes.withUnsafeBytes { CompatCodec.decodeServerMessage($0) }
    }
}
