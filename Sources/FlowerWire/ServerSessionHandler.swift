// One server-side connection as a channel handler: the handshake, then the calls the round loop
// makes through its `WireClientProxy`. The handler's state lives on the channel's event loop.
//
// Per-connection state (explicit; anything else closes the connection):
//
//   awaitingHello --Hello ok--> open --EOF/Goodbye/timeout/malformed/unexpected--> closed
//        +--bad/late Hello: Refusal-------------------------------------------> closed
//
// While open, the one outstanding call (idle -> waiting -> answered / timed out / closed) is the
// proxy's FlowerCore `OutstandingCall`, the same state machine the Flower port's proxy drives;
// its deadline is this channel's event-loop timer. This handler reacts to its transitions: it
// sends the instruction once a call has begun, hands it the answer frame, and closes the
// connection when the deadline passes.
//
// The state decides what the frame decoder accepts: 64 KiB before the handshake (a Hello),
// 4 KiB when idle (only a Goodbye is legal there), --max-frame-mb only while a call waits for
// its answer; compressed frames only after zlib was negotiated.
import FlowerBase
import FlowerCore
import FlowerWireCodec
import Logging
import NIOCore

/// What a call waits for after sending its instruction.
enum Expectation: Sendable {
    case parametersRes
    case fitRes(round: Int)
    case evaluateRes(round: Int)
    /// A secure-aggregation answer of this kind (`ClientMessage.kind`), or a failed FitRes (the client's refusal).
    case secAgg(String)
    var description: String {
        switch self {
        case .parametersRes: return "ParametersRes"
        case .fitRes(let r): return "FitRes for round \(r)"
        case .evaluateRes(let r): return "EvaluateRes for round \(r)"
        case .secAgg(let kind): return kind
        }
    }
}

final class ServerSessionHandler: ChannelInboundHandler {
    typealias InboundIn = ReceivedFrame
    typealias OutboundOut = ByteBuffer

    static let idleHandlerName = "flwr-handshake-idle"

    enum State {
        case awaitingHello(nonce: [UInt8])
        /// Handshaken: calls go through `proxy.calls`.
        case open(WireClientProxy)
        case closed
    }

    private let server: WireServer
    private let policy: FramePolicy
    private let peer: String
    private let address: String
    private let sessionID: String
    private var state: State
    private var pending = true
    private var context: ChannelHandlerContext?
    private var handshakeDeadline: Scheduled<Void>?
    private var closeReason = "the connection ended"

    init(server: WireServer, policy: FramePolicy, peer: String, address: String, sessionID: String) {
        self.server = server
        self.policy = policy
        self.peer = peer
        self.address = address
        self.sessionID = sessionID
        state = .awaitingHello(nonce: WireServer.nonce())
    }

    private var logger: Logger { server.logger }
    private var config: WireServerConfig { server.config }

    // MARK: Lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        policy.stateName = "before the handshake"
        guard case .awaitingHello(let nonce) = state else { return }
        let challenge = Challenge(protocolVersion: flwrProtocolVersion, nonce: nonce,
                                  authRequired: config.authToken != nil, maxFrameBytes: config.maxFrameBytes)
        write(context, .challenge(challenge))
        // A hard deadline for the whole handshake (the idle handler alone would let a peer that
        // trickles one byte at a time hold its slot forever).
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        handshakeDeadline = context.eventLoop.scheduleTask(in: timeAmount(config.handshakeTimeout)) {
            loopBound.value.handshakeTimedOut()
        }
    }

    func channelActive(context: ChannelHandlerContext) {
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        handshakeDeadline?.cancel()
        policy.releaseAll()
        switch state {
        case .awaitingHello:
            logger.debug("connection from \(peer) closed before its Hello (a probe?)")
        case .open(let proxy):
            proxy.calls.close(reason: closeReason, error: WireError.connectionClosed("\(proxy.id) (\(closeReason))"))
            server.manager.unregister(proxy)
        case .closed:
            break
        }
        state = .closed
        server.closed(context.channel, wasPending: pending, address: address)
        pending = false
        self.context = nil
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let reason = "\(error)"
        switch state {
        case .awaitingHello:
            server.warnings.warning(key: "handshake-error", "handshake with \(peer) failed: \(reason)")
            refuse(context, Refusal(reason: .protocolError, message: reason))
        case .open(let proxy):
            if !proxy.calls.isWaiting {
                logger.warning("client \(loggable(proxy.id)): \(reason); closing its connection")
            }
            proxy.calls.close(reason: reason, error: error)
            close(context, reason: reason)
        case .closed:
            context.close(promise: nil)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read, case .awaitingHello = state {
            handshakeTimedOut()
            return
        }
        if let e = event as? ChannelEvent, e == .inputClosed {
            // The peer finished sending (the decoder has seen everything): a clean end of the
            // session, or after a refusal the end of our lingering close.
            if case .open(let proxy) = state, !proxy.calls.isWaiting { logger.info("client \(loggable(proxy.id)) disconnected") }
            close(context, reason: "disconnected")
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func handshakeTimedOut() {
        guard let context, case .awaitingHello = state else { return }
        let hint = config.security == nil ? "" : " (this server speaks TLS: a client without TLS waits for a plain Challenge and sends nothing; it needs --tls-ca)"
        server.warnings.warning(key: "handshake-timeout", "no complete Hello from \(peer) within \(config.handshakeTimeout); refusing it\(hint)")
        refuse(context, Refusal(reason: .protocolError,
                                message: "timed out: no complete Hello within the handshake deadline of \(config.handshakeTimeout); send Hello right after the Challenge"))
    }

    // MARK: Frames

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        server.counters.addIn(frame.wireBytes)
        switch state {
        case .awaitingHello(let nonce):
            handleHello(context, frame, nonce: nonce)
        case .open(let proxy):
            proxy.counters.addIn(frame.wireBytes)
            switch proxy.calls.deliver(frame) {
            case .taken:
                // The answer is decoded by the caller (off the event loop); until it has taken it,
                // this connection is not read (backpressure), and its payload slot stays held.
                policy.pauseForConsumer()
                betweenCalls()
            case .unsolicited:
                // Between calls the only legal message is Goodbye.
                let message = try? frame.withProtobufBytes(limit: idleFrameLimit) { try WireDecoder.clientMessage($0, allocator: nil) }
                if case .goodbye(let why)? = message {
                    logger.info("client \(loggable(proxy.id)) left: \(loggable(why))")
                    close(context, reason: "said goodbye: \(loggable(why))")
                } else {
                    let what = message?.kind ?? "an undecodable frame"
                    logger.warning("client \(loggable(proxy.id)) sent \(what) without an instruction; closing its connection")
                    close(context, reason: "sent \(what) without an instruction")
                }
            case .late:
                frame.slot?.release()
                logger.debug("client \(loggable(proxy.id)): an answer after its call's deadline, dropped (\(proxy.calls.lateAnswers) so far)")
            case .closed, .mismatch:
                frame.slot?.release()
            }
        case .closed:
            break
        }
    }

    private func handleHello(_ context: ChannelHandlerContext, _ frame: ReceivedFrame, nonce: [UInt8]) {
        let hello: Hello
        do {
            let message = try frame.withProtobufBytes(limit: helloFrameLimit) { try WireDecoder.clientMessage($0, allocator: nil) }
            guard case .hello(let h) = message else {
                throw WireError.unexpectedMessage(got: message.kind, expected: "Hello")
            }
            hello = h
        } catch {
            server.warnings.warning(key: "handshake-error", "handshake with \(peer) failed: \(error)")
            refuse(context, Refusal(reason: .protocolError, message: "\(error)"))
            return
        }
        if let refusal = check(hello, nonce: nonce) ?? checkPeer(hello, channel: context.channel) {
            server.warnings.warning(key: "refused-\(refusal.reason)", "refused \(loggable(hello.clientID).debugDescription) from \(peer) (\(refusal.reason)): \(refusal.message)")
            refuse(context, refusal)
            return
        }
        let zlib = config.compressionAllowed && hello.acceptsZlib
        let proxy = WireClientProxy(hello: hello, sessionID: sessionID, peer: peer, channel: context.channel,
                                    handler: NIOLoopBound(self, eventLoop: context.eventLoop), server: server, zlib: zlib,
                                    updateCompression: config.updateCompression,
                                    peerLimit: hello.maxFrameBytes > 0 ? hello.maxFrameBytes : config.maxFrameBytes,
                                    ownLimit: config.maxFrameBytes)
        var registered = server.manager.register(proxy)
        if case .failure(.duplicateIdentity) = registered, config.authToken != nil {
            // The identity was proven (HMAC over this connection's nonce): the new session
            // replaces a half-open old one instead of waiting for TCP keepalive to notice.
            if let old = server.manager.replace(with: proxy) {
                logger.warning("client \(loggable(hello.clientID)) reconnected from \(peer): its previous session \((old as? WireClientProxy)?.sessionID ?? "?") is replaced")
                (old as? WireClientProxy)?.abort(reason: "replaced by a new session of the same identity")
            }
            registered = .success(())
        }
        if case .failure(let why) = registered {
            let reason: RefusalReason
            switch why {
            case .duplicateIdentity: reason = .duplicateIdentity
            case .serverFull: reason = .serverFull
            }
            server.warnings.warning(key: "refused-\(reason)", "refused \(loggable(hello.clientID).debugDescription) from \(peer): \(why)")
            refuse(context, Refusal(reason: reason, message: why.description))
            return
        }
        handshakeDeadline?.cancel()
        handshakeDeadline = nil
        pending = false
        server.leftPending(address: address)
        policy.compressionAllowed = zlib
        _ = context.pipeline.syncOperations.removeHandler(name: Self.idleHandlerName)
        state = .open(proxy)
        betweenCalls()
        write(context, .welcome(Welcome(protocolVersion: flwrProtocolVersion, sessionID: sessionID, zlib: zlib, model: config.model,
                                              updateCompression: config.updateCompression)), proxy: proxy)
        logger.info("client \(loggable(hello.clientID)) joined from \(peer) (session \(sessionID), partition \(hello.partition.map(String.init) ?? "none"), \(loggable(hello.agent)))")
    }

    /// Why `hello` cannot join given what the security layer proved about the peer (mutual TLS:
    /// the certificate's identity is the client's identity).
    private func checkPeer(_ hello: Hello, channel: any Channel) -> Refusal? {
        guard let security = config.security else { return nil }
        switch security.authorize(channel) {
        case .anonymous:
            return nil
        case .refused(let why):
            return Refusal(reason: .badCredentials, message: why)
        case .identity(let id) where id != hello.clientID:
            return Refusal(reason: .badCredentials,
                           message: "the client certificate proves identity \(loggable(id).debugDescription) but the Hello claims \(loggable(hello.clientID).debugDescription): run the client with --client-id \(loggable(id)) (or the --partition its certificate was made for)")
        case .identity:
            return nil
        }
    }

    /// Why `hello` cannot join, if it cannot.
    private func check(_ hello: Hello, nonce: [UInt8]) -> Refusal? {
        if hello.protocolVersion < flwrProtocolVersion {
            return Refusal(reason: .versionMismatch,
                           message: "client speaks protocol version \(hello.protocolVersion), server \(flwrProtocolVersion): the client's flwr binary predates this server's (version 2 added secure aggregation, --secagg; version 3 compressed updates, --update-compression; version 4 the int4 and top-k update encodings and --broadcast-compression fp16); upgrade flwr on the client")
        }
        if hello.protocolVersion != flwrProtocolVersion {
            return Refusal(reason: .versionMismatch,
                           message: "client speaks protocol version \(hello.protocolVersion), server \(flwrProtocolVersion): run the same flwr release on both sides")
        }
        if let token = config.authToken {
            guard let mac = config.mac, mac.verify(hello.authProof, token: token, nonce: nonce, clientID: hello.clientID) else {
                return Refusal(reason: .badCredentials,
                               message: hello.authProof.isEmpty
                                   ? "the server requires authentication: set the same --auth-token (FLWR_AUTH_TOKEN) on the client"
                                   : "authentication proof does not match: set the same --auth-token (FLWR_AUTH_TOKEN) on server and clients")
            }
        }
        if let why = modelMismatch(server: config.model, client: hello.model) {
            return Refusal(reason: .protocolError, message: why)
        }
        if hello.clientID.isEmpty {
            return Refusal(reason: .protocolError, message: "empty client_id: give the client a --client-id or --partition")
        }
        if let max = config.maxClients, server.manager.count >= max {
            return Refusal(reason: .serverFull, message: RegistrationRefusal.serverFull(max: max).description)
        }
        return nil
    }

    /// The frame policy between calls.
    private func betweenCalls() {
        policy.limit = min(idleFrameLimit, config.maxFrameBytes)
        policy.stateLimited = true
        policy.stateName = "between calls"
        policy.slotted = false
    }

    // MARK: Calls (from WireClientProxy, on this event loop)

    /// Begins a call on the proxy's `OutstandingCall` and sends `frame` (then `second`, when given,
    /// in the same flush: a shared frame written as it is, not copied into this client's buffer);
    /// `waiter` gets the answer frame, or why there is none, exactly once.
    func startCall(_ frame: ByteBuffer, then second: ByteBuffer? = nil, expect: Expectation, timeout: Duration,
                   waiter: @escaping OutstandingCall<Expectation, ReceivedFrame>.Waiter) {
        guard let context, case .open(let proxy) = state else {
            waiter(.failure(WireError.connectionClosed("the client (\(closeReason))")))
            return
        }
        let id = proxy.id
        if let refusal = proxy.calls.begin(expect, deadline: timeout, expired: {
            WireError.timeout(operation: "\(expect.description) from \(id)", seconds: timeout.seconds)
        }, waiter: waiter) {
            waiter(.failure(refused(refusal, id)))
            return
        }
        let bytes = frame.readableBytes + (second?.readableBytes ?? 0)
        proxy.counters.addOut(bytes)
        server.counters.addOut(bytes)
        policy.limit = proxy.ownLimit
        policy.stateLimited = false
        policy.stateName = "in a call"
        policy.slotted = true
        var last = frame
        if let second {
            context.write(wrapOutboundOut(frame), promise: nil)  // a failure here fails the flush below too
            last = second
        }
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(last)).whenFailure { error in
            loopBound.value.callFailed(WireError.connectionClosed("\(id) while sending (\(error))"))
        }
    }

    /// Sends the session's last frame (Finish, Reconnect), which expects no answer, if no call
    /// waits: the session ends; half-closes and lets the peer hang up (so the frame is not lost
    /// to a reset), bounded by 2 s.
    func sendLast(_ frame: ByteBuffer, promise: EventLoopPromise<Void>) {
        guard let context, case .open(let proxy) = state else {
            promise.fail(WireError.connectionClosed("the client (\(closeReason))"))
            return
        }
        let reason = "session ended by the server"
        if let refusal = proxy.calls.closeIfIdle(reason: reason, error: WireError.connectionClosed("\(proxy.id) (\(reason))")) {
            promise.fail(refused(refusal, proxy.id))
            return
        }
        proxy.counters.addOut(frame.readableBytes)
        server.counters.addOut(frame.readableBytes)
        state = .closed
        server.manager.unregister(proxy)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(frame)).whenComplete { result in
            promise.completeWith(result)
            channel.close(mode: .output, promise: nil)
            channel.eventLoop.scheduleTask(in: .seconds(2)) { channel.close(promise: nil) }
        }
    }

    private func refused(_ refusal: CallRefusal<Expectation>, _ id: String) -> WireError {
        switch refusal {
        case .busy: return .notReady("client \(id) is still answering an earlier call; call it once at a time")
        case .closed(let why): return .connectionClosed("the client (\(why))")
        }
    }

    /// The proxy's call outlived its deadline (its `OutstandingCall` has failed it and counts
    /// answers that still come as late): the connection closes.
    func callExpired(_ error: any Error) {
        guard let context, case .open(let proxy) = state else { return }
        server.warnings.warning(key: "call-timeout", "client \(loggable(proxy.id)): \(error); closing its connection")
        betweenCalls()
        close(context, reason: "\(error)")
    }

    private func callFailed(_ error: WireError) {
        guard let context, case .open(let proxy) = state, proxy.calls.isWaiting else { return }
        proxy.calls.close(reason: "\(error)", error: error)
        betweenCalls()
        close(context, reason: "\(error)")
    }

    /// The caller decoded the answer: the connection may be read again.
    func consumed() {
        policy.resumeForConsumer()
    }

    /// Closes from the proxy (abort, cancelled call, bad answer), which has already closed its
    /// `OutstandingCall` (failing a waiting call).
    func abort(reason: String) {
        guard let context else { return }
        if case .open = state { betweenCalls() }
        close(context, reason: reason)
    }

    // MARK: Output

    private func write(_ context: ChannelHandlerContext, _ message: ServerMessage, proxy: WireClientProxy? = nil) {
        guard let frame = try? WireEncoder.frameBuffer(message, allocator: context.channel.allocator) else {
            close(context, reason: "could not encode \(message.kind)")
            return
        }
        server.counters.addOut(frame.readableBytes)
        proxy?.counters.addOut(frame.readableBytes)
        context.writeAndFlush(wrapOutboundOut(frame), promise: nil)
    }

    /// Sends a Refusal and closes gracefully (the frame is flushed before the close).
    private func refuse(_ context: ChannelHandlerContext, _ refusal: Refusal) {
        handshakeDeadline?.cancel()
        state = .closed
        closeReason = "refused: \(refusal.message)"
        guard let frame = try? WireEncoder.frameBuffer(.refusal(refusal), allocator: context.channel.allocator) else {
            context.close(promise: nil)
            return
        }
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(frame)).whenComplete { _ in
            channel.close(mode: .output, promise: nil)
            channel.eventLoop.scheduleTask(in: .seconds(1)) { channel.close(promise: nil) }
        }
    }

    private func close(_ context: ChannelHandlerContext, reason: String) {
        closeReason = reason
        context.close(promise: nil)
    }
}

/// Why a client's stated model ("<name>|<layout digest>") cannot join a server's, if it cannot:
/// both stated and the digests differ. Names are only for the message.
func modelMismatch(server: String, client: String) -> String? {
    guard !server.isEmpty, !client.isEmpty else { return nil }
    func split(_ s: String) -> (String, Substring) {
        guard let bar = s.lastIndex(of: "|") else { return (s, Substring(s)) }
        return (String(s[..<bar]).prefix(200).description, s[s.index(after: bar)...])
    }
    let (sn, sd) = split(server), (cn, cd) = split(client)
    guard sd != cd else { return nil }
    return "the client trains \(loggable(cn).debugDescription) but the server runs \(sn.debugDescription) (different parameter layouts): "
        + "start the clients with the server's --model/--model-spec and dataset"
}
