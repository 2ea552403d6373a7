// The fuzzing entry point shared by the libFuzzer target (Fuzz/) and the seeded mutation test:
// arbitrary bytes through both frame decoders (the socket-free `FrameDecoder` and the NIO
// `FrameToMessageDecoder` in an EmbeddedChannel, as the server's pipeline runs it), then
// PayloadLimits, TensorScanner, the budgeted libprotobuf-c unpack and both envelopes' mapping,
// and re-encoding. The two frame decoders must agree on every frame (a differential check).
import FlowerWireCodec
import FlowerZlib
import NIOCore
import NIOEmbedded

/// Drives the whole receive path with untrusted bytes; must never crash, only throw internally.
public enum WireFuzzing {
    /// Frame limit used while fuzzing (small, so oversized frames are exercised cheaply).
    public static let limit = 1 << 16
    /// The inflation budget fuzzed frames share (small, so bombs hit it).
    static let budget = InflateBudget(capacity: 1 << 17)

    /// What one input did.
    public struct Outcome: Sendable {
        /// Messages that decoded (for coverage statistics).
        public var decoded = 0
        /// Frames each decoder produced.
        public var frames = 0, nioFrames = 0
        /// Set when the two frame decoders disagreed: a bug.
        public var mismatch: String?
    }

    /// Feeds `bytes` to both frame decoders in chunks whose sizes come from the first byte
    /// (1-16 bytes for `FrameDecoder`, 4× that for the NIO decoder),
    /// decodes every complete frame as a ServerMessage and as a ClientMessage, re-encodes what
    /// parsed. Returns how many messages decoded.
    @discardableResult
    public static func exercise(_ bytes: UnsafeRawBufferPointer) -> Int {
        run(bytes).decoded
    }

    /// `exercise` with the full outcome (the libFuzzer target traps on `mismatch`).
    public static func run(_ bytes: UnsafeRawBufferPointer) -> Outcome {
        var outcome = Outcome()
        guard !bytes.isEmpty else { return outcome }
        let chunk = Int(bytes[0] % 16) + 1
        let body = UnsafeRawBufferPointer(rebasing: bytes[1...])
        let plain = plainFrames(body, chunk: chunk)
        // The NIO side gets 4-64-byte chunks (every header split some way): an EmbeddedChannel
        // write per byte made the debug-build mutation test ~15x slower.
        let nio = nioFrames(body, chunk: chunk * 4)
        outcome.frames = plain.count
        outcome.nioFrames = nio.count
        if plain.count != nio.count || zip(plain, nio).contains(where: { $0.compressed != $1.compressed || $0.payload != Array($1.payload.readableBytesView) }) {
            outcome.mismatch = "FrameDecoder produced \(plain.count) frames, the NIO decoder \(nio.count) (or different payloads)"
        }
        // The frames agree (or the mismatch is reported): decode the NIO ones, as the server does
        // (slices of the receive buffer), and the plain ones only where they differ.
        for frame in nio {
            outcome.decoded += decodeBothWays { body in try frame.withProtobufBytes(limit: limit, body) }
        }
        if outcome.mismatch != nil {
            for frame in plain {
                _ = decodeBothWays { body in try frame.withProtobufBytes(limit: limit, budget: budget, body) }
            }
        }
        return outcome
    }

    /// Complete frames from `FrameDecoder` until the first framing error.
    static func plainFrames(_ body: UnsafeRawBufferPointer, chunk: Int) -> [Frame] {
        var decoder = FrameDecoder(limit: limit)
        var frames: [Frame] = []
        var offset = 0
        while offset < body.count {
            let end = min(offset + chunk, body.count)
            let saved = decoder
            do {
                frames += try decoder.feed(UnsafeRawBufferPointer(rebasing: body[offset ..< end]))
            } catch {
                // `feed` drops the frames a failing chunk completed before its error: replay the
                // chunk a byte at a time to keep them, as a socket reading smaller pieces would.
                decoder = saved
                for i in offset ..< end {
                    guard let more = try? decoder.feed(UnsafeRawBufferPointer(rebasing: body[i ..< i + 1])) else { return frames }
                    frames += more
                }
            }
            offset = end
        }
        return frames
    }

    /// Complete frames from the NIO decoder (compression allowed, the full limit) until the first error.
    static func nioFrames(_ body: UnsafeRawBufferPointer, chunk: Int) -> [ReceivedFrame] {
        let policy = FramePolicy(limit: limit)
        policy.compressionAllowed = true
        policy.stateLimited = false
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(FrameToMessageDecoder(policy: policy)))
        var frames: [ReceivedFrame] = []
        var offset = 0
        func drain() {
            while let frame = try? channel.readInbound(as: ReceivedFrame.self) { frames.append(frame) }
        }
        while offset < body.count {
            let end = min(offset + chunk, body.count)
            let buffer = channel.allocator.buffer(bytes: UnsafeRawBufferPointer(rebasing: body[offset ..< end]))
            offset = end
            do {
                try channel.writeInbound(buffer)
            } catch {
                drain()
                _ = try? channel.finish()
                return frames
            }
            drain()
        }
        _ = try? channel.finish()  // a frame cut short ends in truncatedFrame, as on a real close
        drain()
        return frames
    }

    /// Decodes the protobuf bytes `with` hands over as both envelopes, re-encoding what parsed.
    private static func decodeBothWays(_ with: ((UnsafeRawBufferPointer) throws -> Int) throws -> Int) -> Int {
        (try? with { payload in
            var decoded = 0
            if let m = try? WireDecoder.serverMessage(payload, allocator: nil) {
                decoded += 1
                if let again = try? WireEncoder.frame(m) { _ = try? WireDecoder.serverMessage(Array(again.dropFirst(FrameHeader.size))) }
            }
            if let m = try? WireDecoder.clientMessage(payload, allocator: nil) {
                decoded += 1
                if let again = try? WireEncoder.frame(m) { _ = try? WireDecoder.clientMessage(Array(again.dropFirst(FrameHeader.size))) }
            }
            return decoded
        }) ?? 0
    }
}
