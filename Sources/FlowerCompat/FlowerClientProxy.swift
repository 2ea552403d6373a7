// The server's handle on one unmodified Flower client: FlowerCore's `ClientProxy` over one
// `FlowerService/Join` stream. Like Flower's legacy server (grpc_bidi's GrpcBridge), the server
// sends one ServerMessage and waits for the one ClientMessage that answers it; that rendezvous is
// FlowerCore's `OutstandingCall` (the state machine the native wire's session drives too), with
// its deadline on an event-loop timer. Its illegal transitions (an answer nobody asked for, the
// wrong kind of answer, a malformed message, no answer in time) end the stream with the reason
// logged, and fail only this client's call; an answer after the deadline is dropped and counted.
import FlowerCore
import FlowerWireCodec
import Foundation
import Logging

/// `ClientProxy` for one Flower client connected over Flower's legacy gRPC protocol.
public final class FlowerClientProxy: ClientProxy, TrafficCounting, Sendable {
    /// A server-assigned identity ("flower-" and 12 hex digits: Flower clients announce none).
    public let id: String
    /// Flower clients declare no partition.
    public let partition: Int? = nil
    /// The peer's address as gRPC reports it.
    public let peer: String

    private let outbound: AsyncStream<[UInt8]>.Continuation
    /// Protobuf bytes exchanged with this client (gRPC and HTTP/2 framing not included).
    public let counters = ByteCounter()
    private let calls: OutstandingCall<Expected, Answer>
    private let reference: Parameters?
    private let broadcast: EncodeOnce<[UInt8]>
    private let logger: Logger

    /// What the proxy waits for.
    enum Expected: String, Sendable {
        case parameters = "GetParametersRes", fit = "FitRes", evaluate = "EvaluateRes", disconnect = "DisconnectRes"

        func matches(_ m: FlowerClientMessage) -> Bool {
            switch (self, m) {
            case (.parameters, .getParametersRes), (.fit, .fitRes), (.evaluate, .evaluateRes), (.disconnect, .disconnect): return true
            default: return false
            }
        }
    }

    /// An answer and the payload slot it holds until it is decoded into `Parameters` (large answers only).
    struct Answer: Sendable {
        let message: FlowerClientMessage
        let slot: PayloadSlot?
    }

    /// `reference`: the server model's parameters, if it has one (names and shapes for answers to
    /// GetParametersIns; FitRes follows its FitIns's layout).
    /// `broadcast`: the listener's shared encodings of each round's FitIns/EvaluateIns.
    /// `clock`: the call deadlines' timer (an event loop of the listener's group).
    init(id: String, peer: String, outbound: AsyncStream<[UInt8]>.Continuation, reference: Parameters?,
         broadcast: EncodeOnce<[UInt8]> = EncodeOnce(), clock: any DeadlineClock, logger: Logger) {
        self.id = id
        self.peer = peer
        self.outbound = outbound
        self.reference = reference
        self.broadcast = broadcast
        self.logger = logger
        // The call ended itself (no answer in time, or a cancelled caller): end the stream.
        calls = OutstandingCall(clock: clock) { _, error in
            if let failure = error as? CompatError {
                logger.warning("Flower client \(id) (\(peer)): \(failure); closing its stream")
            }
            outbound.finish()
        }
    }

    /// Why the stream ended with an error (nil while open or after a clean close): a clean close
    /// fails a pending call with `.disconnected`, which is not a failure of the stream.
    var failure: CompatError? {
        guard let error = calls.closeError as? CompatError else { return nil }
        if case .disconnected = error { return nil }
        return error
    }

    /// Answers that came after their call's deadline (dropped).
    public var lateAnswers: Int { calls.lateAnswers }

    /// Protobuf bytes received from this client.
    public var bytesIn: UInt64 { UInt64(counters.bytesIn) }
    /// Protobuf bytes sent to this client.
    public var bytesOut: UInt64 { UInt64(counters.bytesOut) }

    /// Whether the stream is still open.
    public var isConnected: Bool { calls.closeReason == nil }

    // MARK: ClientProxy

    public func getParameters(_ ins: GetParametersIns, timeout: Duration) async throws -> ParametersRes {
        let received = try await call(.getParameters(config: ins.config), expect: .parameters, timeout: timeout)
        defer { received.slot?.release() }
        let answer = received.message
        guard case .getParametersRes(let status, let tensors) = answer else { throw CompatError.unexpectedMessage(got: answer.kind, expected: "GetParametersRes") }
        guard status.isOK else {
            return ParametersRes(status: Status(code: .getParametersFailed, message: "Flower status \(status.code): \(status.message)"), parameters: Parameters())
        }
        return ParametersRes(parameters: try decoded(tensors, like: reference, what: "GetParametersRes"))
    }

    public func fit(_ ins: FitIns, timeout: Duration) async throws -> FitRes {
        // The numpy conversion and the encoding happen once per round, not once per client.
        let encoded = try broadcast.encoded(.fit(ins)) {
            try CompatCodec.encode(FlowerServerMessage.fit(parameters: ParameterConversion.tensors(ins.parameters), config: ins.config))
        }
        let received = try await call(encoded, kind: "FitIns", expect: .fit, timeout: timeout)
        defer { received.slot?.release() }  // once the answer is Parameters
        let answer = received.message
        guard case .fitRes(let status, let tensors, let numExamples, let metrics) = answer else { throw CompatError.unexpectedMessage(got: answer.kind, expected: "FitRes") }
        guard status.isOK else {
            return FitRes(status: Status(code: .fitFailed, message: "Flower status \(status.code): \(status.message)"), round: ins.round, parameters: Parameters(), numExamples: 0)
        }
        return FitRes(round: ins.round, parameters: try decoded(tensors, like: ins.parameters, what: "FitRes"),
                      numExamples: try examples(numExamples, "FitRes"), metrics: metrics)
    }

    public func evaluate(_ ins: EvaluateIns, timeout: Duration) async throws -> EvaluateRes {
        let encoded = try broadcast.encoded(.evaluate(ins)) {
            try CompatCodec.encode(FlowerServerMessage.evaluate(parameters: ParameterConversion.tensors(ins.parameters), config: ins.config))
        }
        let received = try await call(encoded, kind: "EvaluateIns", expect: .evaluate, timeout: timeout)
        received.slot?.release()
        let answer = received.message
        guard case .evaluateRes(let status, let loss, let numExamples, let metrics) = answer else { throw CompatError.unexpectedMessage(got: answer.kind, expected: "EvaluateRes") }
        guard status.isOK else {
            return EvaluateRes(status: Status(code: .evaluateFailed, message: "Flower status \(status.code): \(status.message)"), round: ins.round, loss: 0, numExamples: 0)
        }
        return EvaluateRes(round: ins.round, loss: Double(loss), numExamples: try examples(numExamples, "EvaluateRes"), metrics: metrics)
    }

    /// Flower's end of training: `ReconnectIns` without a delay, which a Flower client answers with
    /// `DisconnectRes` before it shuts down (Flower's `disconnect_all_clients`).
    public func finish(roundsCompleted: Int, reason: String) async {
        await reconnect(seconds: 0, reason: reason)
    }

    public func reconnect(seconds: Int, reason: String) async {
        do {
            try await call(.reconnect(seconds: Int64(max(0, seconds))), expect: .disconnect, timeout: .seconds(10)).slot?.release()
            logger.debug("Flower client \(id) acknowledged ReconnectIns(\(seconds) s): \(reason)")
        } catch {
            logger.debug("ReconnectIns to Flower client \(id) not acknowledged: \(error)")
        }
        close(reason: "sent ReconnectIns(\(seconds) s)", failure: nil)
    }

    // MARK: Stream side

    /// Hands one decoded (or undecodable) ClientMessage from the stream to the pending call, with
    /// the payload slot it holds (given back here unless the pending call takes the answer).
    func deliver(_ incoming: Result<FlowerClientMessage, CompatError>, bytes: Int, slot: PayloadSlot? = nil) {
        counters.addIn(bytes)
        let message: FlowerClientMessage
        switch incoming {
        case .failure(let error):
            slot?.release()
            close(reason: "\(error)", failure: error)
            return
        case .success(let m): message = m
        }
        switch calls.deliver(Answer(message: message, slot: slot), accepts: { $0.matches(message) }) {
        case .taken:
            break
        case .mismatch(let expected):
            slot?.release()
            let error = CompatError.unexpectedMessage(got: message.kind, expected: expected.rawValue)
            close(reason: "\(error)", failure: error)
        case .unsolicited:
            slot?.release()
            let error = CompatError.unsolicited(message.kind)
            close(reason: "\(error)", failure: error)
        case .late:
            slot?.release()
            logger.debug("Flower client \(id): \(message.kind) after its call's deadline, dropped (\(calls.lateAnswers) so far)")
        case .closed:
            slot?.release()
        }
    }

    /// Ends the stream (the first close wins): a pending call fails, nothing more is sent.
    func close(reason: String, failure: CompatError?) {
        if calls.close(reason: reason, error: failure ?? CompatError.disconnected("Flower client \(id): \(reason)")), let failure {
            logger.warning("Flower client \(id) (\(peer)): \(failure); closing its stream")
        }
        outbound.finish()
    }

    private func call(_ message: FlowerServerMessage, expect: Expected, timeout: Duration) async throws -> Answer {
        try await call(try CompatCodec.encode(message), kind: message.kind, expect: expect, timeout: timeout)
    }

    /// Sends `encoded` (a ServerMessage of `kind`) and waits for the answer `expect` names. Past
    /// the deadline the stream ends, like Flower's server (DEADLINE_EXCEEDED), since a late answer
    /// would arrive out of turn.
    private func call(_ encoded: [UInt8], kind: String, expect: Expected, timeout: Duration) async throws -> Answer {
        let id = self.id
        return try await calls.call(expect, deadline: timeout, refused: { refusal in
            switch refusal {
            case .busy(let pending):
                return CompatError.unexpectedMessage(got: "a second instruction (\(kind))", expected: "the answer to the pending one (\(pending.rawValue))")
            case .closed(let reason):
                return CompatError.disconnected("Flower client \(id) is gone (\(reason))")
            }
        }, expired: {
            CompatError.timeout("Flower client \(id) did not answer \(kind) within \(timeout)")
        }) {
            counters.addOut(encoded.count)
            outbound.yield(encoded)
        }
    }

    private func decoded(_ t: FlowerTensors, like reference: Parameters?, what: String) throws -> Parameters {
        do {
            return try ParameterConversion.parameters(t, like: reference)
        } catch {
            // A result the server cannot use: the round records a failure; the stream stays usable.
            logger.warning("Flower client \(id): \(what) refused: \(error)")
            throw error
        }
    }

    private func examples(_ n: Int64, _ what: String) throws -> Int {
        guard n >= 0, n <= 1 << 53 else {
            throw CompatError.malformedMessage("\(what).num_examples \(n) is outside 0...2^53")
        }
        return Int(n)
    }
}
