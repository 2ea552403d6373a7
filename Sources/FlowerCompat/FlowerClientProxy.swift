// The server's handle on one unmodified Flower client: FlowerCore's `ClientProxy` over one
// `FlowerService/Join` stream. Like Flower's legacy server (grpc_bidi's GrpcBridge), the server
// sends one ServerMessage and waits for the one ClientMessage that answers it; here that
// rendezvous is an explicit state machine whose illegal transitions (an answer nobody asked for,
// the wrong kind of answer, a malformed message, a late answer) end the stream with the reason
// logged, and fail only this client's call.
import FlowerCore
import Foundation
import Logging
import Synchronization

/// `ClientProxy` for one Flower client connected over Flower's legacy gRPC protocol.
public final class FlowerClientProxy: ClientProxy, TrafficCounting, Sendable {
    /// A server-assigned identity ("flower-" and 12 hex digits: Flower clients announce none).
    public let id: String
    /// Flower clients declare no partition.
    public let partition: Int? = nil
    /// The peer's address as gRPC reports it.
    public let peer: String

    private let outbound: AsyncStream<[UInt8]>.Continuation
    private let traffic = Atomic<UInt64>(0)
    private let trafficOut = Atomic<UInt64>(0)
    private let state = Mutex<State>(.idle)
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

    /// The connection's state: no call pending, one call pending, or closed (with why).
    enum State {
        case idle
        case waiting(token: UInt64, expected: Expected, continuation: CheckedContinuation<Answer, any Error>)
        case closed(reason: String, failure: CompatError?)
    }
    private let tokens = Atomic<UInt64>(0)

    /// `reference`: the server model's parameters, if it has one (names and shapes for answers to
    /// GetParametersIns; FitRes follows its FitIns's layout).
    /// `broadcast`: the listener's shared encodings of each round's FitIns/EvaluateIns.
    init(id: String, peer: String, outbound: AsyncStream<[UInt8]>.Continuation, reference: Parameters?,
         broadcast: EncodeOnce<[UInt8]> = EncodeOnce(), logger: Logger) {
        self.id = id
        self.peer = peer
        self.outbound = outbound
        self.reference = reference
        self.broadcast = broadcast
        self.logger = logger
    }

    /// Why the stream ended with an error (nil while open or after a clean close).
    var failure: CompatError? {
        state.withLock { if case .closed(_, let f) = $0 { return f } else { return nil } }
    }

    /// Protobuf bytes received from this client (gRPC and HTTP/2 framing not included).
    public var bytesIn: UInt64 { traffic.load(ordering: .relaxed) }
    /// Protobuf bytes sent to this client.
    public var bytesOut: UInt64 { trafficOut.load(ordering: .relaxed) }

    /// Whether the stream is still open.
    public var isConnected: Bool {
        state.withLock { if case .closed = $0 { return false } else { return true } }
    }

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
        traffic.add(UInt64(bytes), ordering: .relaxed)
        let message: FlowerClientMessage
        switch incoming {
        case .failure(let error):
            slot?.release()
            close(reason: "\(error)", failure: error)
            return
        case .success(let m): message = m
        }
        let outcome: Result<CheckedContinuation<Answer, any Error>, CompatError>? = state.withLock { s in
            switch s {
            case .waiting(_, let expected, let continuation) where expected.matches(message):
                s = .idle
                return .success(continuation)
            case .waiting(_, let expected, _):
                return .failure(.unexpectedMessage(got: message.kind, expected: expected.rawValue))
            case .idle:
                return .failure(.unsolicited(message.kind))
            case .closed:
                return nil
            }
        }
        switch outcome {
        case .success(let continuation)?: continuation.resume(returning: Answer(message: message, slot: slot))
        case .failure(let error)?:
            slot?.release()
            close(reason: "\(error)", failure: error)
        case nil: slot?.release()
        }
    }

    /// Ends the stream (first reason wins): a pending call fails, nothing more is sent.
    func close(reason: String, failure: CompatError?) {
        let pending: CheckedContinuation<Answer, any Error>? = state.withLock { s in
            switch s {
            case .closed: return nil
            case .idle:
                s = .closed(reason: reason, failure: failure)
                return nil
            case .waiting(_, _, let continuation):
                s = .closed(reason: reason, failure: failure)
                return continuation
            }
        }
        if let failure {
            logger.warning("Flower client \(id) (\(peer)): \(failure); closing its stream")
        }
        pending?.resume(throwing: failure ?? CompatError.disconnected("Flower client \(id): \(reason)"))
        outbound.finish()
    }

    private func call(_ message: FlowerServerMessage, expect: Expected, timeout: Duration) async throws -> Answer {
        try await call(try CompatCodec.encode(message), kind: message.kind, expect: expect, timeout: timeout)
    }

    /// Sends `encoded` (a ServerMessage of `kind`) and waits for the answer `expect` names.
    private func call(_ encoded: [UInt8], kind: String, expect: Expected, timeout: Duration) async throws -> Answer {
        let token = tokens.add(1, ordering: .relaxed).newValue
        let timer = Task { [weak self] in
            try await Task.sleep(for: timeout)
            self?.expire(token: token, timeout: timeout, what: kind)
        }
        defer { timer.cancel() }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Answer, any Error>) in
                let refusal: CompatError? = state.withLock { s in
                    switch s {
                    case .idle:
                        s = .waiting(token: token, expected: expect, continuation: continuation)
                        return nil
                    case .waiting(_, let pending, _):
                        return .unexpectedMessage(got: "a second instruction (\(kind))", expected: "the answer to the pending one (\(pending.rawValue))")
                    case .closed(let reason, _):
                        return .disconnected("Flower client \(id) is gone (\(reason))")
                    }
                }
                if let refusal {
                    continuation.resume(throwing: refusal)
                } else {
                    trafficOut.add(UInt64(encoded.count), ordering: .relaxed)
                    outbound.yield(encoded)
                }
            }
        } onCancel: {
            self.close(reason: "the call was cancelled", failure: nil)
        }
    }

    /// A call that outlived its deadline: like Flower's server (DEADLINE_EXCEEDED), the stream is
    /// ended, since a late answer would arrive out of turn.
    private func expire(token: UInt64, timeout: Duration, what: String) {
        let current = state.withLock { s -> Bool in
            if case .waiting(let t, _, _) = s { return t == token }
            return false
        }
        if current {
            close(reason: "no answer in time", failure: .timeout("Flower client \(id) did not answer \(what) within \(timeout)"))
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
