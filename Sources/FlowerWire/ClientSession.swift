// One client connection from connect to Finish: handshake, then instruction → Client → result.
import FlowerBase
import FlowerCore
import FlowerWireCodec
import Foundation
import Logging

struct Session {
    enum Outcome {
        case finished(Int)
        case reconnect(seconds: Int)
        case lost(WireError)
    }

    let config: WireClientConfig
    let client: any Client
    let logger: Logger
    /// Top-k error feedback: what this client process has not sent yet, kept across sessions.
    var residual = UpdateResidual()

    var target: String { "\(config.host):\(config.port)" }

    /// Handshake failures throw (retryable ones are retried by the caller); once welcomed, a
    /// dropped connection is `.lost` and anything else the server does wrong throws.
    func run() async throws -> Outcome {
        let config = self.config
        let target = self.target
        let deadline = Deadline.after(config.connectTimeout)
        let handshakeLimit = min(helloFrameLimit, config.maxFrameBytes)
        let connection = try await FrameConnection.connect(host: config.host, port: config.port,
                                                           timeout: config.connectTimeout, limit: handshakeLimit,
                                                           security: config.security)
        defer { connection.close() }
        // A TLS server waits for a ClientHello and sends nothing to a plain client: say so.
        let waitingFor = config.security == nil
            ? "Challenge from \(target) (if that server uses TLS, give this client --tls-ca)" : "Challenge from \(target)"
        let first: ServerMessage
        do {
            first = try await connection.receive(timeout: deadline.remaining, what: waitingFor)
            .withProtobufBytes(limit: helloFrameLimit) { try WireDecoder.serverMessage($0, allocator: nil) }
        } catch WireError.connectionClosed(let who) where config.security == nil {
            throw WireError.connectionClosed("\(who) before its Challenge (if that server uses TLS, give this client --tls-ca)")
        }
        let challenge: Challenge
        switch first {
        case .challenge(let c): challenge = c
        case .refusal(let r): throw WireError.refused(reason: r.reason, message: r.message)
        default: throw WireError.unexpectedMessage(got: first.kind, expected: "Challenge")
        }
        let peerLimit = challenge.maxFrameBytes > 0 ? challenge.maxFrameBytes : config.maxFrameBytes
        var proof: [UInt8] = []
        if let token = config.authToken {
            guard let mac = config.mac else { throw WireError.tokenWithoutMAC }
            proof = mac.proof(token: token, nonce: challenge.nonce, clientID: config.clientID)
        }
        let hello = Hello(protocolVersion: flwrProtocolVersion, clientID: config.clientID, partition: config.partition,
                          acceptsZlib: config.acceptCompression, authProof: proof, agent: config.agent,
                          maxFrameBytes: config.maxFrameBytes, model: config.model)
        // The session's limits apply from the Hello on: the server may send its first instruction
        // right behind the Welcome, before this task has looked at the Welcome.
        try await connection.established(limit: config.maxFrameBytes, compression: config.acceptCompression)
        try await connection.send(try WireEncoder.frameBuffer(.hello(hello)), timeout: deadline.remaining, what: "Hello")
        let answer = try await connection.receive(timeout: deadline.remaining, what: "Welcome from \(target)")
            .withProtobufBytes(limit: helloFrameLimit) { try WireDecoder.serverMessage($0, allocator: nil) }
        let welcome: Welcome
        switch answer {
        case .welcome(let w): welcome = w
        case .refusal(let r): throw WireError.refused(reason: r.reason, message: r.message)
        default: throw WireError.unexpectedMessage(got: answer.kind, expected: "Welcome or Refusal")
        }
        logger.info("joined \(target) as \(config.clientID) (session \(welcome.sessionID), compression \(welcome.zlib ? "zlib when it pays" : "off"), updates \(welcome.updateCompression))")
        config.onSessionChange?(true)
        defer { config.onSessionChange?(false) }

        do {
            return try await serve(connection, zlib: welcome.zlib, updates: welcome.updateCompression, peerLimit: peerLimit)
        } catch let error as WireError where WireClient.isRetryable(error) {
            if Task.isCancelled { throw CancellationError() }
            return .lost(error)
        } catch is CancellationError {
            if let bye = try? WireEncoder.frameBuffer(.goodbye(reason: "client stopping")) {
                try? await connection.send(bye, timeout: .seconds(1), what: "Goodbye")
            }
            throw CancellationError()
        }
    }

    /// One secure-aggregation step on this connection's participant; a refusal (or a failed
    /// training) becomes a failed FitRes carrying why, so the server drops this client from the round.
    private func secAgg(_ ins: SecAggInstruction, _ participant: SecAggParticipant) async -> ClientMessage {
        do {
            switch try await participant.handle(ins) {
            case .publicKeys(let m): return .secAggPublicKeys(m)
            case .shareKeys(let m): return .secAggShareKeys(m)
            case .maskedInput(let m, let metrics): return .secAggMaskedInput(m, metrics: metrics)
            case .unmaskResponse(let m): return .secAggUnmaskResponse(m)
            }
        } catch {
            logger.warning("secure aggregation: \(ins.name) refused: \(error)")
            return .fitRes(FitRes(status: Status(code: .fitFailed, message: "\(error)"), round: 0, parameters: Parameters(), numExamples: 0))
        }
    }

    /// The reply to a FitIns: the result as it is, or under update compression a successful
    /// result's update (trained weights minus the FitIns weights), encoded as the server announced.
    private func fitReply(_ ins: FitIns, _ res: FitRes, updates: UpdateCompression) throws -> ClientMessage {
        guard updates != .none, res.status.code == .ok else { return .fitRes(res) }
        let seed = SplitMix64.derive(seed: config.updateSeed, stream: UInt64(ins.round))
        let tensors = try residual.compress(local: res.parameters, global: ins.parameters, as: updates, seed: seed, round: ins.round)
        var bare = res
        bare.parameters = Parameters()
        return .compressedFitRes(bare, update: CompressedUpdate(encoding: updates, tensors: tensors))
    }

    /// A client's reply as the wire's message.
    private static func message(_ reply: ClientReply) -> ClientMessage {
        switch reply {
        case .parameters(let res): return .parametersRes(res)
        case .fit(let res): return .fitRes(res)
        case .evaluate(let res): return .evaluateRes(res)
        }
    }

    private func serve(_ connection: FrameConnection, zlib: Bool, updates: UpdateCompression, peerLimit: Int) async throws -> Outcome {
        let limit = config.maxFrameBytes
        let sendTimeout = config.sendTimeout
        // Secure aggregation: this connection's client-side state machine, and the shares waiting for their FitIns.
        let participant = SecAggParticipant(client: client)
        let dispatcher = ClientDispatcher(client: client, logger: logger)
        var forwardedShares: SecAggForwardedShares?
        while true {
            let frame = try await withTaskCancellationHandler {
                try await connection.receive(timeout: nil, what: "an instruction")
            } onCancel: {
                // Wakes the wait; the session then says Goodbye (best effort) and ends.
                connection.cancelReceive()
            }
            let message = try frame.withProtobufBytes(limit: limit) { try WireDecoder.serverMessage($0, allocator: nil) }
            let reply: ClientMessage
            if let shares = forwardedShares {
                // Secure aggregation: the FitIns after the forwarded shares is answered with the masked update.
                forwardedShares = nil
                guard case .fit(let ins) = message else {
                    throw WireError.unexpectedMessage(got: message.kind, expected: "FitIns after SecAggForwardedShares")
                }
                reply = await secAgg(.forwardedShares(shares, fit: ins), participant)
                let replyFrame = try WireEncoder.frameBuffer(reply, compression: zlib, peerLimit: peerLimit)
                try await connection.send(replyFrame, timeout: sendTimeout, what: "\(reply.kind) to the server")
                continue
            }
            switch message {
            case .secAggSetup(let m): reply = await secAgg(.setup(m), participant)
            case .secAggNeighbourKeys(let m): reply = await secAgg(.neighbourKeys(m), participant)
            case .secAggForwardedShares(let m):
                forwardedShares = m  // answered after the FitIns that follows
                continue
            case .secAggUnmaskRequest(let m): reply = await secAgg(.unmaskRequest(m), participant)
            case .getParameters(let ins):
                reply = try await dispatcher.reply(to: .getParameters(ins), framing: Self.message)
            case .fit(let ins):
                // fitReply compresses an ok result as the server announced; if that throws, the
                // dispatcher sends the failed FitRes instead.
                reply = try await dispatcher.reply(to: .fit(ins)) { answer in
                    guard case .fit(let res) = answer else { return Self.message(answer) }
                    return try fitReply(ins, res, updates: updates)
                }
            case .evaluate(let ins):
                reply = try await dispatcher.reply(to: .evaluate(ins), framing: Self.message)
            case .reconnect(let seconds, let reason):
                logger.info("server asks to reconnect in \(seconds) s: \(reason)")
                return .reconnect(seconds: seconds)
            case .finish(let rounds, let reason, let failed):
                if failed {
                    logger.error("server stopped with an error after \(rounds) rounds: \(reason)")
                    throw WireError.serverFailed(roundsCompleted: rounds, reason: reason)
                }
                logger.info("server finished after \(rounds) rounds: \(reason)")
                return .finished(rounds)
            default:
                throw WireError.unexpectedMessage(got: message.kind, expected: "an instruction (GetParametersIns, FitIns, EvaluateIns, Reconnect, Finish)")
            }
            let replyFrame = try WireEncoder.frameBuffer(reply, compression: zlib, peerLimit: peerLimit)
            try await connection.send(replyFrame, timeout: sendTimeout, what: "\(reply.kind) to the server")
        }
    }
}

/// A client's top-k error-feedback residual (`--update-compression topk:F`): the part of its
/// updates it has not sent yet, added to its next update. One per `WireClient.run`, so it survives
/// reconnects of the same process and is lost when the process ends; it restarts from zero when
/// the model's layout changes.
final class UpdateResidual: @unchecked Sendable {
    private let lock = NSLock()
    private var layout: [TensorSpec] = []
    private var values: [Float] = []

    /// `UpdateCodec.compress` carrying this residual from call to call.
    func compress(local: Parameters, global: Parameters, as mode: UpdateCompression, seed: UInt64, round: Int) throws -> [CompressedTensor] {
        lock.lock()
        defer { lock.unlock() }
        if local.layout != layout {
            layout = local.layout
            values = []
        }
        return try UpdateCodec.compress(local: local, global: global, as: mode, seed: seed, round: round, residual: &values)
    }

    /// The residual now (empty before the first top-k update with error feedback).
    var current: [Float] {
        lock.lock()
        defer { lock.unlock() }
        return values
    }
}
