// The frame codec inside a SwiftNIO pipeline (proto/README.md, "Frames").
//
//   socket ⇄ ReadGate ⇄ ByteToMessageHandler(FrameToMessageDecoder) → session handler
//
// `FrameToMessageDecoder` wraps the socket-free `FrameHeader` parser: it reads the 5-byte header,
// checks flags, the compression agreement and the size limit of the connection's current state
// *before* anything is buffered, reserves room for the announced payload once (so the payload is
// accumulated into one buffer without repeated growth), and emits the payload as a slice of the
// received buffer: the bytes are copied once more only when the decoder turns them into
// `Parameters`. Frames to send are built once as `ByteBuffer`s by `WireEncoder.frameBuffer` and
// written as they are (a `MessageToByteEncoder` would copy each broadcast frame per connection).
//
// Backpressure: `ReadGate` swallows the channel's `read` requests while its `FramePolicy` says
// reading is paused (a decoded frame waits for its consumer, or a large payload waits for one of
// the server's K payload slots), so the kernel's socket buffer and TCP flow control hold the rest.
import FlowerCore
import NIOCore

/// One frame as received: the payload is a slice of the receive buffer (no copy yet).
public struct ReceivedFrame: Sendable {
    /// Frame flag bit 0: the payload is a zlib stream.
    public var compressed: Bool
    /// The payload bytes exactly as carried.
    public var payload: ByteBuffer
    /// The server's payload slot this frame holds (released once it is decoded), if any.
    package var slot: PayloadSlot?

    /// A received frame from its parts (tools and benchmarks).
    public init(compressed: Bool, payload: ByteBuffer) {
        self.compressed = compressed
        self.payload = payload
        slot = nil
    }

    package init(compressed: Bool, payload: ByteBuffer, slot: PayloadSlot?) {
        self.compressed = compressed
        self.payload = payload
        self.slot = slot
    }

    /// The frame in `buffer` (header + payload, as `WireEncoder.frameBuffer` builds it), or nil
    /// when it is not one whole frame within `limit`. The payload is a slice (no copy).
    public static func parse(_ buffer: ByteBuffer, limit: Int) throws -> ReceivedFrame? {
        guard buffer.readableBytes >= FrameHeader.size else { return nil }
        let header = try buffer.withUnsafeReadableBytes { try FrameHeader.parse(UnsafeRawBufferPointer(rebasing: $0[..<FrameHeader.size]), limit: limit) }
        guard buffer.readableBytes == FrameHeader.size + header.length,
              let payload = buffer.getSlice(at: buffer.readerIndex + FrameHeader.size, length: header.length) else { return nil }
        return ReceivedFrame(compressed: header.compressed, payload: payload)
    }

    /// The `ServerMessage` it carries (decoded straight from the receive buffer).
    public func serverMessage(limit: Int) throws -> ServerMessage {
        try withProtobufBytes(limit: limit) { try WireDecoder.serverMessage($0, allocator: nil) }
    }

    /// The `ClientMessage` it carries (decoded straight from the receive buffer).
    public func clientMessage(limit: Int) throws -> ClientMessage {
        try withProtobufBytes(limit: limit) { try WireDecoder.clientMessage($0, allocator: nil) }
    }

    /// Header + payload bytes, for traffic counters.
    package var wireBytes: Int { FrameHeader.size + payload.readableBytes }

    /// The protobuf bytes, inflating at most `limit` bytes when compressed.
    package func withProtobufBytes<R>(limit: Int, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        if compressed {  // inflated into the shared InflateBudget, held while `body` decodes
            return try Frame(compressed: true, payload: Array(payload.readableBytesView)).withProtobufBytes(limit: limit, body)
        }
        return try payload.withUnsafeReadableBytes(body)
    }
}

/// What one connection accepts right now; owned by the channel's event loop.
///
/// The session handler changes it as its state changes (handshake, idle, in a call); the decoder
/// and `ReadGate` consult it. Not `Sendable`: only touched on the channel's event loop.
package final class FramePolicy {
    /// Largest payload accepted in the current state.
    package var limit: Int
    /// Whether compressed frames may arrive (only once zlib was negotiated).
    package var compressionAllowed = false
    /// Server only: payloads at least `PayloadSlots.threshold` bytes need a slot first.
    package var slots: PayloadSlots?
    /// Whether a large payload may be buffered now (server: only while a call waits for it).
    package var slotted = false
    /// A slot granted for the frame being received.
    package var heldSlot: PayloadSlot?
    /// Whether the decoder is parked waiting for a slot.
    package var waitingForSlot = false
    /// This connection's place in the slot queue while it waits.
    private var waiterID: PayloadSlots.WaiterID?
    private var pausedForConsumer = false
    private weak var gate: ReadGate?
    /// What the refusal log lines call this connection's current state.
    package var stateName = "handshake"
    /// Whether `limit` is a state's small limit (handshake, idle) rather than --max-frame-mb.
    package var stateLimited = true

    package init(limit: Int) {
        self.limit = limit
    }

    package func attach(_ gate: ReadGate) { self.gate = gate }

    /// Reading stops until `resumeForConsumer` (a decoded frame waits for its consumer).
    package func pauseForConsumer() {
        pausedForConsumer = true
    }

    /// The consumer took the frame: reading resumes.
    package func resumeForConsumer() {
        pausedForConsumer = false
        gate?.update()
    }

    package var readingPaused: Bool { pausedForConsumer || waitingForSlot }

    /// Called by the decoder for a large payload: true when it may be buffered now; otherwise the
    /// policy parks the channel (no reads) until a slot is granted, then re-runs the decoder.
    package func admitLargePayload(on loop: any EventLoop) -> Bool {
        guard let slots else { return true }
        if heldSlot != nil { return true }
        if waitingForSlot { return false }
        let bound = NIOLoopBound(self, eventLoop: loop)
        let granted = slots.acquire(queued: { waiterID = $0 }) { slot in
            loop.execute {
                // On `loop`; a channel that stopped waiting hands the slot straight back.
                let policy = bound.value
                guard policy.waitingForSlot else { slot.release(); return }
                policy.waitingForSlot = false
                policy.waiterID = nil
                policy.heldSlot = slot
                policy.gate?.redecode()
            }
        }
        if let granted {
            heldSlot = granted
            return true
        }
        waitingForSlot = true
        return false
    }

    /// The channel closed: give back any slot it held or waited for.
    package func releaseAll() {
        heldSlot?.release()
        heldSlot = nil
        if waitingForSlot {
            waitingForSlot = false
            if let waiterID { slots?.cancel(waiter: waiterID) }
            waiterID = nil
        }
    }
}

/// Swallows `read` requests while the connection's `FramePolicy` pauses reading; re-issues them
/// when it resumes. Also re-runs the decoder when a payload slot arrives.
package final class ReadGate: ChannelDuplexHandler {
    package typealias InboundIn = ByteBuffer
    package typealias InboundOut = ByteBuffer
    package typealias OutboundIn = ByteBuffer
    package typealias OutboundOut = ByteBuffer

    private let policy: FramePolicy
    private var context: ChannelHandlerContext?
    private var readPending = false

    package init(policy: FramePolicy) {
        self.policy = policy
        policy.attach(self)
    }

    package func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    package func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    package func read(context: ChannelHandlerContext) {
        if policy.readingPaused {
            readPending = true
        } else {
            context.read()
        }
    }

    /// Issues a read that was held back, if reading may resume.
    package func update() {
        guard let context, readPending, !policy.readingPaused else { return }
        readPending = false
        context.read()
    }

    /// Offers the decoder an empty buffer so it looks at what it already holds again.
    package func redecode() {
        guard let context else { return }
        context.fireChannelRead(NIOAny(context.channel.allocator.buffer(capacity: 0)))
        update()
    }
}

/// The frame decoder as NIO's `ByteToMessageDecoder` around `FrameHeader.parse`.
package struct FrameToMessageDecoder: ByteToMessageDecoder {
    package typealias InboundOut = ReceivedFrame

    package let policy: FramePolicy
    private var header: (compressed: Bool, length: Int)?

    package init(policy: FramePolicy) {
        self.policy = policy
    }

    package mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        if header == nil {
            guard buffer.readableBytes >= FrameHeader.size else { return .needMoreData }
            let parsed: (compressed: Bool, length: Int)
            do {
                parsed = try buffer.withUnsafeReadableBytes { bytes in
                    try FrameHeader.parse(UnsafeRawBufferPointer(rebasing: bytes[..<FrameHeader.size]), limit: policy.limit)
                }
            } catch WireError.reservedFlags(let flags) where flags == 0x16 {
                if buffer.withUnsafeReadableBytes({ WireError.looksLikeTLS(UnsafeRawBufferPointer($0)) }) {
                    throw WireError.security("the peer opened a TLS handshake, but this side speaks plain FlowerWire (no TLS configured): enable TLS on both sides (server --tls-cert/--tls-key, client --tls-ca) or on neither")
                }
                throw WireError.reservedFlags(flags)
            } catch WireError.frameTooLarge(let length, let limit) where policy.stateLimited {
                throw WireError.frameRefused(length: length, limit: limit, state: policy.stateName)
            }
            if parsed.compressed && !policy.compressionAllowed {
                throw WireError.compressionNotNegotiated
            }
            header = parsed
        }
        guard let (compressed, length) = header else { return .needMoreData }
        if length >= PayloadSlots.threshold && policy.slotted && !policy.admitLargePayload(on: context.eventLoop) {
            return .needMoreData  // parked: no reads until a slot frees (ReadGate)
        }
        let total = FrameHeader.size + length
        guard buffer.readableBytes >= total else {
            // Room for the whole frame once, so the payload accumulates without repeated growth.
            if buffer.writableBytes < total - buffer.readableBytes {
                buffer.reserveCapacity(minimumWritableBytes: total - buffer.readableBytes)
            }
            return .needMoreData
        }
        buffer.moveReaderIndex(forwardBy: FrameHeader.size)
        guard let payload = buffer.readSlice(length: length) else { return .needMoreData }
        header = nil
        let slot = policy.heldSlot
        policy.heldSlot = nil
        context.fireChannelRead(wrapInboundOut(ReceivedFrame(compressed: compressed, payload: payload, slot: slot)))
        return .continue
    }

    package mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        if buffer.readableBytes > 0 {
            let expected = header.map { FrameHeader.size + $0.length } ?? FrameHeader.size
            let received = buffer.readableBytes
            buffer.moveReaderIndex(forwardBy: received)
            throw WireError.truncatedFrame(received: received, expected: expected)
        }
        return .needMoreData
    }
}
