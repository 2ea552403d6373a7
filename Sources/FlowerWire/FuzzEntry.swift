// The fuzzing entry point shared by the libFuzzer target (Fuzz/) and the seeded mutation test:
// arbitrary bytes through the frame decoder, TensorScanner and both envelopes' protobuf mapping
// (every decode scans first), and re-encoding.

/// Drives the whole receive path with untrusted bytes; must never crash, only throw internally.
public enum WireFuzzing {
    /// Frame limit used while fuzzing (small, so oversized frames are exercised cheaply).
    public static let limit = 1 << 16

    /// Feeds `bytes` to a frame decoder in chunks whose sizes come from the first byte, decodes
    /// every complete frame as a ServerMessage and as a ClientMessage, and re-encodes what parsed.
    /// Returns how many messages decoded (for coverage statistics).
    @discardableResult
    public static func exercise(_ bytes: UnsafeRawBufferPointer) -> Int {
        guard !bytes.isEmpty else { return 0 }
        let chunk = Int(bytes[0] % 16) + 1
        let body = UnsafeRawBufferPointer(rebasing: bytes[1...])
        var decoder = FrameDecoder(limit: limit)
        var decoded = 0
        var offset = 0
        while offset < body.count {
            let end = min(offset + chunk, body.count)
            let frames: [Frame]
            do {
                frames = try decoder.feed(UnsafeRawBufferPointer(rebasing: body[offset ..< end]))
            } catch {
                return decoded  // a real connection closes here
            }
            offset = end
            for frame in frames {
                guard let payload = try? frame.protobufBytes(limit: limit) else { continue }
                if let m = try? WireDecoder.serverMessage(payload) {
                    decoded += 1
                    if let again = try? WireEncoder.frame(m) { _ = try? WireDecoder.serverMessage(Array(again.dropFirst(FrameHeader.size))) }
                }
                if let m = try? WireDecoder.clientMessage(payload) {
                    decoded += 1
                    if let again = try? WireEncoder.frame(m) { _ = try? WireDecoder.clientMessage(Array(again.dropFirst(FrameHeader.size))) }
                }
            }
        }
        return decoded
    }
}
