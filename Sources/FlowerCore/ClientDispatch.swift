// The client side of a session, for both transports: one instruction from the server → the
// user's `Client` → one reply. The native wire and the Flower port each decode their message into
// a `ClientInstruction` and frame the `ClientReply` back; what happens in between is here, once:
//
//   - a result with status ok is framed as it is;
//   - a result with another status, or an error the client throws, becomes the failure reply of
//     the instruction's kind (`ClientReply.failure`): the status (a thrown error's text under
//     getParametersFailed / fitFailed / evaluateFailed), the instruction's round, and no payload;
//     the session goes on (the server counts this client as failed for the round);
//   - an error thrown while framing an ok result (e.g. compressing the update) is a failure of the
//     call too, and the failure reply is framed instead;
//   - a client that throws while the task is cancelled (the process is stopping) gets no reply:
//     `CancellationError` is thrown, and the transport ends its session;
//   - each failure is logged once, as a warning; a fit's success as one info line.
import Logging

/// An instruction from the server to a client, whatever wire carried it.
public enum ClientInstruction: Sendable {
    case getParameters(GetParametersIns)
    case fit(FitIns)
    case evaluate(EvaluateIns)

    /// How log lines name it: "getParameters", "fit for round 3", "evaluate for round 3".
    public var description: String {
        switch self {
        case .getParameters: return "getParameters"
        case .fit(let ins): return "fit for round \(ins.round)"
        case .evaluate(let ins): return "evaluate for round \(ins.round)"
        }
    }

    /// The status code of this kind's failure.
    public var failureCode: Status.Code {
        switch self {
        case .getParameters: return .getParametersFailed
        case .fit: return .fitFailed
        case .evaluate: return .evaluateFailed
        }
    }
}

/// A client's answer to one `ClientInstruction`, of the same kind.
public enum ClientReply: Sendable {
    case parameters(ParametersRes)
    case fit(FitRes)
    case evaluate(EvaluateRes)

    public var status: Status {
        switch self {
        case .parameters(let res): return res.status
        case .fit(let res): return res.status
        case .evaluate(let res): return res.status
        }
    }

    /// The failure reply to `instruction`: `status`, the instruction's round, no parameters, no
    /// examples, no metrics (and a NaN loss: an evaluation that did not happen).
    public static func failure(_ status: Status, to instruction: ClientInstruction) -> ClientReply {
        switch instruction {
        case .getParameters:
            return .parameters(ParametersRes(status: status, parameters: Parameters()))
        case .fit(let ins):
            return .fit(FitRes(status: status, round: ins.round, parameters: Parameters(), numExamples: 0))
        case .evaluate(let ins):
            return .evaluate(EvaluateRes(status: status, round: ins.round, loss: .nan, numExamples: 0))
        }
    }
}

/// Calls a `Client` for each instruction and turns what it returns or throws into the reply.
public struct ClientDispatcher: Sendable {
    public let client: any Client
    public let logger: Logger

    public init(client: any Client, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    /// The reply to `instruction`, framed by `framing` (the transport's message). `framing` sees
    /// an ok result or a failure reply; if it throws on an ok result, the failure reply carrying
    /// that error is framed instead (an error framing a failure reply is the transport's, and is
    /// thrown). Throws `CancellationError` when the client throws after the task was cancelled.
    public func reply<Framed>(to instruction: ClientInstruction, framing: (ClientReply) throws -> Framed) async throws -> Framed {
        let result: ClientReply
        do {
            result = try await call(instruction)
        } catch {
            if Task.isCancelled { throw CancellationError() }
            return try framing(failed(instruction, Status(code: instruction.failureCode, message: "\(error)")))
        }
        guard result.status.code == .ok else {
            return try framing(failed(instruction, result.status))
        }
        let framed: Framed
        do {
            framed = try framing(result)
        } catch {
            return try framing(failed(instruction, Status(code: instruction.failureCode, message: "\(error)")))
        }
        if case .fit(let ins) = instruction, case .fit(let res) = result {
            logger.info("round \(ins.round): trained on \(res.numExamples) examples")
        }
        return framed
    }

    /// The reply to `instruction` as a FlowerCore value.
    public func reply(to instruction: ClientInstruction) async throws -> ClientReply {
        try await reply(to: instruction) { $0 }
    }

    private func call(_ instruction: ClientInstruction) async throws -> ClientReply {
        switch instruction {
        case .getParameters(let ins): return .parameters(try await client.getParameters(ins))
        case .fit(let ins): return .fit(try await client.fit(ins))
        case .evaluate(let ins): return .evaluate(try await client.evaluate(ins))
        }
    }

    private func failed(_ instruction: ClientInstruction, _ status: Status) -> ClientReply {
        logger.warning("\(instruction.description) failed: \(status.message)")
        return .failure(status, to: instruction)
    }
}
