// The server's handle on one connected client: FlowerCore's `ClientProxy` over a FlowerWire
// channel. A call begins on the connection's `OutstandingCall` (FlowerCore's one-outstanding-call
// state machine, shared with the Flower port) from the channel's `ServerSessionHandler` on its
// event loop, and awaits the answer frame, which it decodes here, off the event loop; a call on a
// closed connection throws at once, a call past its deadline throws `timeout` (and an answer that
// still comes is dropped and counted), and any malformed or out-of-sequence answer throws and
// closes this connection only.
import FlowerCore
import FlowerWireCodec
import Logging
import NIOCore

/// `ClientProxy` for one FlowerWire connection.
public final class WireClientProxy: ClientProxy, Sendable {
    /// The client's identity from its Hello.
    public let id: String
    /// The partition the client declared, if any.
    public let partition: Int?
    /// Server-assigned session identifier.
    public let sessionID: String
    /// The client's address.
    public let peer: String
    /// Bytes exchanged with this client, frame headers included.
    public let counters = ByteCounter()
    let zlib: Bool
    /// How this client encodes its fit updates (announced in its Welcome).
    let updateCompression: UpdateCompression
    let peerLimit: Int
    let ownLimit: Int
    private let channel: any Channel
    private let handler: NIOLoopBound<ServerSessionHandler>
    private let server: WireServer
    /// The one outstanding call; its deadline is the channel's event-loop timer.
    let calls: OutstandingCall<Expectation, ReceivedFrame>

    init(hello: Hello, sessionID: String, peer: String, channel: any Channel, handler: NIOLoopBound<ServerSessionHandler>,
         server: WireServer, zlib: Bool, updateCompression: UpdateCompression = .none, peerLimit: Int, ownLimit: Int) {
        self.updateCompression = updateCompression
        id = hello.clientID
        partition = hello.partition
        self.sessionID = sessionID
        self.peer = peer
        self.channel = channel
        self.handler = handler
        self.server = server
        self.zlib = zlib
        self.peerLimit = peerLimit
        self.ownLimit = ownLimit
        // Told only when a deadline passes (the handler's timer, on its loop): the wire ends a
        // cancelled call through `abort`, not `OutstandingCall.cancel()`.
        let loop = channel.eventLoop
        calls = OutstandingCall(clock: EventLoopClock(loop)) { _, error in
            if loop.inEventLoop {
                handler.value.callExpired(error)
            } else {
                loop.execute { handler.value.callExpired(error) }
            }
        }
    }

    /// Whether the connection is still open.
    public var isConnected: Bool { calls.closeReason == nil }

    /// Answers that came after their call's deadline (dropped).
    public var lateAnswers: Int { calls.lateAnswers }

    // MARK: ClientProxy

    public func getParameters(_ ins: GetParametersIns, timeout: Duration) async throws -> ParametersRes {
        let frame = try WireEncoder.frameBuffer(.getParameters(ins), compression: zlib, peerLimit: peerLimit)
        guard case .parametersRes(let res) = try await call(frame, .parametersRes, timeout: timeout) else {
            throw WireError.unexpectedMessage(got: "another message", expected: "ParametersRes")
        }
        return res
    }

    public func fit(_ ins: FitIns, timeout: Duration) async throws -> FitRes {
        let frame = try broadcastFrame(.fit(ins))
        switch try await call(frame, .fitRes(round: ins.round), timeout: timeout) {
        case .fitRes(let res):
            // Under update compression only a failure travels as a plain FitRes.
            guard updateCompression == .none || res.status.code != .ok else {
                throw refuseUpdate("sent float32 weights although the server announced --update-compression \(updateCompression)")
            }
            return res
        case .compressedFitRes(var res, let update):
            // A client older than varint indices sends u32 indices, one older than int8 values
            // float32 values (it read the same fraction and selection): both still decode.
            let sent = update.encoding.encodingName, announced = updateCompression.encodingName
            let olderTopK = (sent == "topk" && announced == "topk-varint") || (["topk", "topk-varint"].contains(sent) && announced == "topk-int8")
            guard sent == announced || olderTopK else {
                throw refuseUpdate("sent a \(update.encoding.encodingName) update although the server announced --update-compression \(updateCompression)")
            }
            do {
                res.parameters = try UpdateCodec.decompress(update.tensors, as: updateCompression, onto: ins.parameters, round: ins.round,
                                                            varintIndices: sent == "topk-varint", int8Values: sent == "topk-int8")
            } catch {
                throw refuseUpdate("\(error)")
            }
            return res
        default:
            throw WireError.unexpectedMessage(got: "another message", expected: "FitRes")
        }
    }

    /// A compressed update this client should not have sent: logged, its connection closed.
    private func refuseUpdate(_ why: String) -> WireError {
        let error = WireError.badParameters("client \(id) \(why)")
        server.logger.warning("client \(loggable(id)): \(error); closing its connection")
        abort(reason: "\(error)")
        return error
    }

    public func evaluate(_ ins: EvaluateIns, timeout: Duration) async throws -> EvaluateRes {
        let frame = try broadcastFrame(.evaluate(ins))
        guard case .evaluateRes(let res) = try await call(frame, .evaluateRes(round: ins.round), timeout: timeout) else {
            throw WireError.unexpectedMessage(got: "another message", expected: "EvaluateRes")
        }
        return res
    }

    public func finish(roundsCompleted: Int, reason: String) async {
        await sendFinal(.finish(roundsCompleted: roundsCompleted, reason: reason))
    }

    public func finish(roundsCompleted: Int, reason: String, failed: Bool) async {
        await sendFinal(.finish(roundsCompleted: roundsCompleted, reason: reason, failed: failed))
    }

    public func reconnect(seconds: Int, reason: String) async {
        await sendFinal(.reconnect(seconds: seconds, reason: reason))
    }

    /// One secure-aggregation step. The forwarded shares travel in the same flush as the FitIns
    /// (the client answers the FitIns with its masked update); the FitIns is the round's shared
    /// frame, written as it is rather than appended to this client's shares (a copy of the model
    /// per client held at once: +1.56 MB per client of the README's model). A client that refuses
    /// a step answers with a failed FitRes carrying why, which is thrown here without closing the
    /// connection.
    public func secureAggregation(_ ins: SecAggInstruction, timeout: Duration) async throws -> SecAggAnswer {
        let frame: ByteBuffer
        var second: ByteBuffer? = nil
        let expect: String
        switch ins {
        case .setup(let m):
            frame = try WireEncoder.frameBuffer(.secAggSetup(m), peerLimit: peerLimit); expect = "SecAggPublicKeys"
        case .neighbourKeys(let m):
            frame = try WireEncoder.frameBuffer(.secAggNeighbourKeys(m), peerLimit: peerLimit); expect = "SecAggShareKeys"
        case .forwardedShares(let m, let fit):
            frame = try WireEncoder.frameBuffer(.secAggForwardedShares(m), peerLimit: peerLimit)
            second = try broadcastFrame(.fit(fit))
            expect = "SecAggMaskedInput"
        case .unmaskRequest(let m):
            frame = try WireEncoder.frameBuffer(.secAggUnmaskRequest(m), peerLimit: peerLimit); expect = "SecAggUnmaskResponse"
        }
        switch try await call(frame, then: second, .secAgg(expect), timeout: timeout) {
        case .secAggPublicKeys(let m): return .publicKeys(m)
        case .secAggShareKeys(let m): return .shareKeys(m)
        case .secAggMaskedInput(let m, let metrics): return .maskedInput(m, metrics: metrics)
        case .secAggUnmaskResponse(let m): return .unmaskResponse(m)
        case .fitRes(let res): throw SecAggParticipationError.refused(clientID: id, reason: res.status.message)
        default: throw WireError.unexpectedMessage(got: "another message", expected: expect)
        }
    }

    /// The round's shared frame (encoded once for all clients), checked against this client's limit.
    private func broadcastFrame(_ message: ServerMessage) throws -> ByteBuffer {
        let frame = try server.broadcast.frame(message, zlib: zlib, broadcast: server.config.broadcastCompression)
        let size = frame.readableBytes - FrameHeader.size
        guard size <= peerLimit else {
            throw WireError.cannotEncode("\(message.kind) of \(size) bytes exceeds the receiver's frame limit of \(peerLimit) bytes; raise --max-frame-mb on the receiving side")
        }
        return frame
    }

    private func sendFinal(_ message: ServerMessage) async {
        do {
            let frame = try WireEncoder.frameBuffer(message, peerLimit: peerLimit)
            let promise = channel.eventLoop.makePromise(of: Void.self)
            let handler = self.handler
            channel.eventLoop.execute { handler.value.sendLast(frame, promise: promise) }
            try await promise.futureResult.get()
        } catch {
            server.logger.debug("\(message.kind) to \(id) not delivered: \(error)")
        }
    }

    // MARK: Calls

    private func call(_ frame: ByteBuffer, then second: ByteBuffer? = nil, _ expect: Expectation,
                      timeout: Duration) async throws -> ClientMessage {
        if let why = calls.closeReason {
            throw WireError.notReady("client \(id) is disconnected (\(why)); it must reconnect before it gets instructions")
        }
        let loop = channel.eventLoop
        let handler = self.handler
        let received = try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<ReceivedFrame, any Error>) in
                loop.execute {
                    handler.value.startCall(frame, then: second, expect: expect, timeout: timeout) { continuation.resume(with: $0) }
                }
            }
        } onCancel: {
            abort(reason: "the call was cancelled")
        }
        defer {
            received.slot?.release()
            loop.execute { handler.value.consumed() }
        }
        do {
            let message = try received.withProtobufBytes(limit: ownLimit) { try WireDecoder.clientMessage($0, allocator: nil) }
            switch (expect, message) {
            case (.parametersRes, .parametersRes): return message
            case (.fitRes(let round), .fitRes(let res)) where res.round == round: return message
            case (.fitRes(let round), .compressedFitRes(let res, _)) where res.round == round: return message
            case (.evaluateRes(let round), .evaluateRes(let res)) where res.round == round: return message
            case (.secAgg(let kind), _) where message.kind == kind: return message
            case (.secAgg, .fitRes(let res)) where res.status.code != .ok: return message  // the client refused the step
            case (_, .goodbye(let why)): throw WireError.connectionClosed("\(id) (goodbye: \(why))")
            case (_, .fitRes(let res)), (_, .compressedFitRes(let res, _)):
                throw WireError.unexpectedMessage(got: "FitRes for round \(res.round)", expected: expect.description)
            case (_, .evaluateRes(let res)): throw WireError.unexpectedMessage(got: "EvaluateRes for round \(res.round)", expected: expect.description)
            default: throw WireError.unexpectedMessage(got: message.kind, expected: expect.description)
            }
        } catch {
            server.logger.warning("client \(loggable(id)): \(error); closing its connection")
            abort(reason: "\(error)")
            throw error
        }
    }

    /// Closes the connection from any thread (first reason wins); a pending call fails.
    func abort(reason: String) {
        calls.close(reason: reason, error: WireError.connectionClosed("the server (\(reason))"))
        let handler = self.handler
        channel.eventLoop.execute { handler.value.abort(reason: reason) }
    }
}

/// The server loop reports per-round traffic from these cumulative per-connection counters.
extension WireClientProxy: TrafficCounting {
    public var bytesIn: UInt64 { UInt64(counters.bytesIn) }
    public var bytesOut: UInt64 { UInt64(counters.bytesOut) }
}
