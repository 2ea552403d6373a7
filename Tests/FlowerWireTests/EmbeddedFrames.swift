// The wire's NIO frame decoder (`FrameToMessageDecoder`, as the server's and the client's
// pipelines run it) driven through an EmbeddedChannel, for tests that need frames out of bytes.
@testable import FlowerWireCodec
import NIOCore
import NIOEmbedded

/// A channel holding only the frame decoder, with a policy that accepts compressed frames up to
/// `limit` bytes and reports oversized ones as `frameTooLarge` (not a connection state's refusal).
func embeddedDecoder(limit: Int) throws -> EmbeddedChannel {
    let policy = FramePolicy(limit: limit)
    policy.compressionAllowed = true
    policy.stateLimited = false
    return EmbeddedChannel(handler: ByteToMessageHandler(FrameToMessageDecoder(policy: policy)))
}

/// Every frame the channel's decoder has passed on so far, as plain `Frame`s.
func readFrames(_ channel: EmbeddedChannel) throws -> [Frame] {
    var frames: [Frame] = []
    while let f = try channel.readInbound(as: ReceivedFrame.self) {
        frames.append(Frame(compressed: f.compressed, payload: Array(f.payload.readableBytesView)))
    }
    return frames
}

/// Frames out of a byte stream that arrives in pieces (a raw socket in a test).
///
/// An EmbeddedChannel may only be used on the thread that made it, and test peers read on
/// whatever thread runs them; so each `feed` decodes the bytes held so far in a fresh channel and
/// keeps the tail that no whole frame used.
struct EmbeddedFrameReader {
    let limit: Int
    private var pending: [UInt8] = []

    init(limit: Int) { self.limit = limit }

    /// Adds `bytes` and returns the frames they completed, in order; a bad header throws.
    mutating func feed(_ bytes: [UInt8]) throws -> [Frame] {
        pending += bytes
        let channel = try embeddedDecoder(limit: limit)
        defer { _ = try? channel.close().wait() }
        try channel.writeInbound(channel.allocator.buffer(bytes: pending))
        let frames = try readFrames(channel)
        pending.removeFirst(frames.reduce(0) { $0 + FrameHeader.size + $1.payload.count })
        return frames
    }
}
