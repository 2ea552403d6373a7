// The client side of a channel: async `receive`/`send` of frames over a NIO pipeline
//
//   ReadGate → ByteToMessageHandler(FrameToMessageDecoder) → FrameInbox
//
// with backpressure: while a decoded frame is not taken the channel is not read (the server's next
// instruction waits in TCP buffers while the client trains). Frames that were already read when
// the gate closed (a Welcome and the first instruction arriving in one segment) are kept in order.
import FlowerBase
import FlowerCore
import FlowerWireCodec
import NIOCore
import NIOPosix
import Synchronization

/// Receives frames for an async consumer, one at a time.
final class FrameInbox: ChannelInboundHandler {
    typealias InboundIn = ReceivedFrame

    private let policy: FramePolicy
    /// Decoded frames not yet taken, oldest first: usually none or one; more only when one read
    /// held several frames (pausing stops reading, not decoding what was already read).
    private var buffered = CircularBuffer<ReceivedFrame>(initialCapacity: 2)
    private var terminal: (any Error)?
    private var waiter: EventLoopPromise<ReceivedFrame>?
    private var timer: Scheduled<Void>?
    /// The reading task was cancelled: a receive that would wait fails instead (the cancellation
    /// can reach the event loop before the receive it was meant to wake).
    private var cancelled = false
    private var context: ChannelHandlerContext?

    init(policy: FramePolicy) { self.policy = policy }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        if let waiter {
            self.waiter = nil
            timer?.cancel()
            waiter.succeed(frame)
        } else {
            buffered.append(frame)
            policy.pauseForConsumer()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        end(WireError.connectionClosed("the server"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        end(error)
        context.close(promise: nil)
    }

    private func end(_ error: any Error) {
        if terminal == nil { terminal = error }
        timer?.cancel()
        waiter?.fail(terminal ?? error)
        waiter = nil
    }

    /// The next frame (on the event loop); fails with `timeout` after `timeout` if given.
    func next(timeout: Duration?, what: String, promise: EventLoopPromise<ReceivedFrame>) {
        if let frame = buffered.popFirst() {
            if buffered.isEmpty { policy.resumeForConsumer() }
            promise.succeed(frame)
            return
        }
        if let terminal {
            promise.fail(terminal)
            return
        }
        if cancelled {
            promise.fail(CancellationError())
            return
        }
        waiter = promise
        if let timeout, let context {
            let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
            timer = context.eventLoop.scheduleTask(in: timeAmount(timeout)) {
                let inbox = bound.value
                guard let w = inbox.waiter else { return }
                inbox.waiter = nil
                w.fail(WireError.timeout(operation: what, seconds: timeout.seconds))
            }
        }
        policy.resumeForConsumer()
    }

    /// Fails a waiting `next` with `CancellationError` (the connection stays open for a Goodbye).
    func cancelWait() {
        cancelled = true
        timer?.cancel()
        waiter?.fail(CancellationError())
        waiter = nil
    }

    func setLimit(_ limit: Int, compression: Bool, slots: PayloadSlots?) {
        policy.limit = limit
        policy.stateLimited = false
        policy.compressionAllowed = compression
        if let slots {
            policy.slots = slots
            policy.slotted = true
        }
    }
}

/// The connection's inbox, handed from the channel initializer to `connect`.
private final class InboxHolder: Sendable {
    let inbox = Mutex<NIOLoopBound<FrameInbox>?>(nil)
}

/// A connected client channel with async frame I/O.
package struct FrameConnection: Sendable {
    let channel: any Channel
    private let inbox: NIOLoopBound<FrameInbox>

    /// Connects to `host:port` within `timeout` on the shared event loops.
    package static func connect(host: String, port: Int, timeout: Duration, limit: Int, security: (any ChannelSecurity)? = nil,
                        group: any EventLoopGroup = WireEventLoops.group) async throws -> FrameConnection {
        // The inbox is taken in the initializer: a TLS handshake can fail (and empty the
        // pipeline) before this task looks the handler up, and the inbox keeps that error.
        let holder = InboxHolder()
        let bootstrap = ClientBootstrap(group: group)
            .connectTimeout(timeAmount(timeout))
            .channelOption(.socketOption(.so_keepalive), value: 1)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try security?.secure(channel)
                    let policy = FramePolicy(limit: limit)
                    policy.stateName = "before the Welcome"
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(ReadGate(policy: policy))
                    try sync.addHandler(ByteToMessageHandler(FrameToMessageDecoder(policy: policy)))
                    let inbox = FrameInbox(policy: policy)
                    try sync.addHandler(inbox)
                    holder.inbox.withLock { $0 = NIOLoopBound(inbox, eventLoop: channel.eventLoop) }
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.connect(host: host, port: port).get()
        } catch let error as ChannelError {
            if case .connectTimeout = error { throw WireError.timeout(operation: "connecting to \(host):\(port)", seconds: timeout.seconds) }
            throw WireError.system(call: "connect(\(host):\(port))", errno: 0, detail: "\(error)")
        } catch let error as IOError {
            throw WireError.system(call: "connect(\(host):\(port))", errno: error.errnoCode, detail: "\(error)")
        } catch let error as SocketAddressError {
            throw WireError.resolve(host: host, detail: "\(error)")
        } catch {
            throw WireError.system(call: "connect(\(host):\(port))", errno: 0, detail: "\(error)")
        }
        guard let inbox = holder.inbox.withLock({ $0 }) else {
            throw WireError.connectionClosed("the server during connection set-up")
        }
        return FrameConnection(channel: channel, inbox: inbox)
    }

    /// The next frame; `timeout` nil waits as long as the connection lives.
    package func receive(timeout: Duration?, what: String) async throws -> ReceivedFrame {
        let promise = channel.eventLoop.makePromise(of: ReceivedFrame.self)
        let inbox = self.inbox
        channel.eventLoop.execute { inbox.value.next(timeout: timeout, what: what, promise: promise) }
        return try await promise.futureResult.get()
    }

    /// Wakes a pending `receive` with `CancellationError`, or the next one if none is pending yet
    /// (every later receive that would wait fails the same way: the reading task is cancelled).
    package func cancelReceive() {
        let inbox = self.inbox
        channel.eventLoop.execute { inbox.value.cancelWait() }
    }

    /// Writes one frame (already encoded) and waits until it is handed to the kernel.
    package func send(_ frame: ByteBuffer, timeout: Duration, what: String) async throws {
        let channel = self.channel
        let timer = channel.eventLoop.scheduleTask(in: timeAmount(timeout)) { channel.close(promise: nil) }
        let written = channel.eventLoop.makePromise(of: Void.self)
        channel.writeAndFlush(frame, promise: written)
        // Cancelled on the event loop as soon as the write completes, not when this task resumes:
        // with the cooperative threads busy training, the task can resume minutes later, and the
        // timer then closed a healthy connection (seen in `flwr simulate` under load).
        written.futureResult.whenComplete { _ in timer.cancel() }
        do {
            try await written.futureResult.get()
        } catch {
            throw WireError.connectionClosed("the server while sending \(what) (\(error))")
        }
    }

    /// After the handshake: the session's frame limit and compression agreement.
    /// With `slots`, large frames wait for one of them before being buffered (released by the
    /// consumer through the frame's slot).
    package func established(limit: Int, compression: Bool, slots: PayloadSlots? = nil) async throws {
        let inbox = self.inbox
        try await channel.eventLoop.submit { inbox.value.setLimit(limit, compression: compression, slots: slots) }.get()
    }

    /// Closes the connection.
    package func close() {
        channel.close(promise: nil)
    }
}
