// One client connection from connect to Finish: handshake, then instruction → Client → result.
import FlowerCore
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

    var target: String { "\(config.host):\(config.port)" }

    /// Handshake failures throw (retryable ones are retried by the caller); once welcomed, a
    /// dropped connection is `.lost` and anything else the server does wrong throws.
    func run() async throws -> Outcome {
        let config = self.config
        let target = self.target
        let deadline = Deadline.after(config.connectTimeout)
        let socket = try await onThread("flwr-connect") {
            try Socket.connect(host: config.host, port: config.port, deadline: deadline)
        }
        defer { socket.close() }
        let io = FramedIO(socket: socket, counters: [])
        let first = try await onThread("flwr-read") {
            try WireDecoder.serverMessage(io.readFrame(limit: min(helloFrameLimit, config.maxFrameBytes), deadline: deadline,
                                                      timeout: config.connectTimeout, what: "Challenge from \(target)", peer: "the server"),
                                          limit: helloFrameLimit)
        }
        guard case .challenge(let challenge) = first else {
            throw WireError.unexpectedMessage(got: first.kind, expected: "Challenge")
        }
        let peerLimit = challenge.maxFrameBytes > 0 ? challenge.maxFrameBytes : config.maxFrameBytes
        let proof = config.authToken.map { HMACSHA256.proof(token: $0, nonce: challenge.nonce, clientID: config.clientID) } ?? []
        let hello = Hello(protocolVersion: flwrProtocolVersion, clientID: config.clientID, partition: config.partition,
                          acceptsZlib: config.acceptCompression, authProof: proof, agent: config.agent,
                          maxFrameBytes: config.maxFrameBytes, model: config.model)
        let helloFrame = try WireEncoder.frame(.hello(hello))
        let answer = try await onThread("flwr-hello") {
            try io.write(helloFrame, deadline: deadline, timeout: config.connectTimeout, what: "Hello to \(target)")
            return try WireDecoder.serverMessage(io.readFrame(limit: min(helloFrameLimit, config.maxFrameBytes), deadline: deadline,
                                                             timeout: config.connectTimeout, what: "Welcome from \(target)", peer: "the server"),
                                                 limit: helloFrameLimit)
        }
        let welcome: Welcome
        switch answer {
        case .welcome(let w): welcome = w
        case .refusal(let r): throw WireError.refused(reason: r.reason, message: r.message)
        default: throw WireError.unexpectedMessage(got: answer.kind, expected: "Welcome or Refusal")
        }
        logger.info("joined \(target) as \(config.clientID) (session \(welcome.sessionID), compression \(welcome.zlib ? "zlib when it pays" : "off"))")

        return try await withTaskCancellationHandler {
            do {
                return try await serve(io, zlib: welcome.zlib, peerLimit: peerLimit)
            } catch let error as WireError where WireClient.isRetryable(error) {
                if Task.isCancelled {
                    if let bye = try? WireEncoder.frame(.goodbye(reason: "client stopping")) {
                        try? io.write(bye, deadline: .after(.seconds(1)), timeout: .seconds(1), what: "Goodbye")
                    }
                    throw CancellationError()
                }
                return .lost(error)
            }
        } onCancel: {
            _ = Glibc.shutdown(socket.fd, Int32(SHUT_RD))  // wakes the blocked read; the write side stays for Goodbye
        }
    }

    private func serve(_ io: FramedIO, zlib: Bool, peerLimit: Int) async throws -> Outcome {
        let limit = config.maxFrameBytes
        let sendTimeout = config.sendTimeout
        while true {
            let message = try await onThread("flwr-read") {
                try WireDecoder.serverMessage(io.readFrame(limit: limit, deadline: nil, timeout: nil,
                                                           what: "an instruction", peer: "the server"), limit: limit)
            }
            let reply: ClientMessage
            switch message {
            case .getParameters(let ins):
                do { reply = .parametersRes(try await client.getParameters(ins)) } catch {
                    logger.warning("getParameters failed: \(error)")
                    reply = .parametersRes(ParametersRes(status: Status(code: .getParametersFailed, message: "\(error)"), parameters: Parameters()))
                }
            case .fit(let ins):
                do { reply = .fitRes(try await client.fit(ins)) } catch {
                    logger.warning("fit for round \(ins.round) failed: \(error)")
                    reply = .fitRes(FitRes(status: Status(code: .fitFailed, message: "\(error)"), round: ins.round,
                                           parameters: Parameters(), numExamples: 0))
                }
            case .evaluate(let ins):
                do { reply = .evaluateRes(try await client.evaluate(ins)) } catch {
                    logger.warning("evaluate for round \(ins.round) failed: \(error)")
                    reply = .evaluateRes(EvaluateRes(status: Status(code: .evaluateFailed, message: "\(error)"), round: ins.round,
                                                     loss: .nan, numExamples: 0))
                }
            case .reconnect(let seconds, let reason):
                logger.info("server asks to reconnect in \(seconds) s: \(reason)")
                return .reconnect(seconds: seconds)
            case .finish(let rounds, let reason):
                logger.info("server finished after \(rounds) rounds: \(reason)")
                return .finished(rounds)
            default:
                throw WireError.unexpectedMessage(got: message.kind, expected: "an instruction (GetParametersIns, FitIns, EvaluateIns, Reconnect, Finish)")
            }
            let frame = try WireEncoder.frame(reply, compression: zlib, peerLimit: peerLimit)
            try await onThread("flwr-write") {
                try io.write(frame, deadline: .after(sendTimeout), timeout: sendTimeout, what: "\(reply.kind) to the server")
            }
        }
    }
}
