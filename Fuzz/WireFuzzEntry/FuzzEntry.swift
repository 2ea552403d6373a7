// The fuzzing entry point shared by the libFuzzer target (Fuzz/WireFuzzer.swift) and the seeded
// mutation test: arbitrary bytes through the NIO `FrameToMessageDecoder` in an EmbeddedChannel (as
// the server's pipeline runs it), then PayloadLimits, TensorScanner, the budgeted libprotobuf-c
// unpack, both envelopes' mapping, and re-encoding. The decoder runs twice, fed the input in
// small chunks and fed it whole; both runs must give the same frames (a differential check: a
// frame boundary or header split across reads must not change what is decoded).
import FlowerWireCodec
import NIOCore
import NIOEmbedded

/// Drives the whole receive path with untrusted bytes; must never crash, only throw internally.
public enum WireFuzzing {
    /// Frame limit used while fuzzing (small, so oversized frames are exercised cheaply).
    public static let limit = 1 << 16

    /// What one input did.
    public struct Outcome: Sendable {
        /// Messages that decoded (for coverage statistics).
        public var decoded = 0
        /// Frames the decoder produced from the whole input, and from the input in chunks.
        public var frames = 0, nioFrames = 0
        /// Set when the two runs of the decoder disagreed: a bug.
        public var mismatch: String?
    }

    /// Feeds `bytes` (after the first) to the frame decoder whole and in chunks of 4 × (first
    /// byte % 16 + 1) bytes, decodes every complete frame as a ServerMessage and as a
    /// ClientMessage, re-encodes what parsed. Returns how many messages decoded.
    @discardableResult
    public static func exercise(_ bytes: UnsafeRawBufferPointer) -> Int {
        run(bytes).decoded
    }

    /// `exercise` with the full outcome (the libFuzzer target traps on `mismatch`).
    public static func run(_ bytes: UnsafeRawBufferPointer) -> Outcome {
        var outcome = Outcome()
        guard !bytes.isEmpty else { return outcome }
        let chunk = (Int(bytes[0] % 16) + 1) * 4
        let body = UnsafeRawBufferPointer(rebasing: bytes[1...])
        // Chunks of 4-64 bytes split every header some way; an EmbeddedChannel write per byte made
        // the debug-build mutation test ~15x slower.
        let whole = nioFrames(body, chunk: max(body.count, 1))
        let chunked = nioFrames(body, chunk: chunk)
        outcome.frames = whole.count
        outcome.nioFrames = chunked.count
        if whole.count != chunked.count || zip(whole, chunked).contains(where: { $0.compressed != $1.compressed || $0.payload != $1.payload }) {
            outcome.mismatch = "the decoder produced \(whole.count) frames from the whole input, \(chunked.count) from \(chunk)-byte chunks (or different payloads)"
        }
        // Decode the chunked run's frames, as the server does (slices of the receive buffer).
        for frame in chunked {
            outcome.decoded += decodeBothWays { body in try frame.withProtobufBytes(limit: limit, body) }
        }
        return outcome
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
