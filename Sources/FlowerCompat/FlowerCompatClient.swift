// `flwr client --flower-server HOST:PORT`: a FlowerCore `Client` (our Swift model) joins a Flower
// server that speaks the legacy protocol (Flower's `start_server`), as an unmodified Flower
// client would: open `FlowerService/Join`, answer each ServerMessage with one ClientMessage, and
// on `ReconnectIns` send `DisconnectRes` and either shut down (0 s) or come back later.
//
// Flower's tensors carry no names: they take the names of the client's own model, position by
// position, and a count or shape that differs from it ends the run with a clear error (the Python
// side runs a different model).
import FlowerCore
import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import Synchronization

/// Settings of a client joining a Flower server.
public struct FlowerCompatClientConfig: Sendable {
    public var host: String
    public var port: Int
    /// Largest gRPC message accepted from the server (Flower's default: 512 MiB).
    public var maxMessageBytes: Int = CompatLimits.defaultMaxMessageBytes
    /// How long to keep trying to reach the server (the whole run; 0 retries after that).
    public var connectDeadline: Duration = .seconds(600)
    /// PEM file of the CA that signed the server's certificate; nil: plaintext.
    public var rootCertificate: String?
    /// Seed of the reconnect backoff's jitter.
    public var seed: UInt64 = 0

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }
}

/// Runs a FlowerCore client against a Flower (legacy gRPC) server.
public enum FlowerCompatClient {
    /// What ended one Join session.
    enum SessionEnd: Sendable {
        case shutdown
        case reconnect(seconds: Int64)
        case streamEnded
    }

    /// Joins the server until it says training is over (ReconnectIns without delay); returns the
    /// number of FitIns answered.
    public static func run(config: FlowerCompatClientConfig, client: any Client, logger: Logger) async throws -> Int {
        let local = try await client.getParameters(GetParametersIns())
        guard local.status.code == .ok else {
            throw CompatError.layoutMismatch("the local model has no parameters to match the server's against: \(local.status.message)")
        }
        let reference = local.parameters
        let security: HTTP2ClientTransport.Posix.TransportSecurity
        if let ca = config.rootCertificate {
            security = .tls { $0.trustRoots = .certificates([.file(path: ca, format: .pem)]) }
        } else {
            security = .plaintext
        }
        let transport = try HTTP2ClientTransport.Posix(target: target(config.host, config.port), transportSecurity: security)
        let counter = Counter()
        let clock = ContinuousClock()
        let deadline = clock.now + config.connectDeadline
        var backoff = ReconnectBackoff(initialDelay: .milliseconds(500), maxDelay: .seconds(10), seed: config.seed)
        return try await withGRPCClient(transport: transport) { grpc in
            while true {
                let started = counter.messages
                let end: SessionEnd
                do {
                    end = try await session(grpc, config: config, client: client, reference: reference, counter: counter, logger: logger)
                } catch let error as RPCError where error.code == .unavailable || error.code == .unknown {
                    guard clock.now < deadline else {
                        throw CompatError.disconnected("cannot reach the Flower server at \(config.host):\(config.port) (\(error.message)); is it running?")
                    }
                    let wait = backoff.nextDelay()
                    logger.info("Flower server at \(config.host):\(config.port) not reachable (\(error.code): \(error.message)); retrying in \(wait)")
                    try await Task.sleep(for: wait)
                    continue
                }
                if counter.messages > started { backoff.reset() }
                switch end {
                case .shutdown:
                    return counter.fits
                case .reconnect(let seconds):
                    logger.info("Flower server asked to reconnect in \(seconds) s")
                    try await Task.sleep(for: .seconds(max(0, min(seconds, 3600))))
                case .streamEnded:
                    guard clock.now < deadline || counter.messages > started else {
                        throw CompatError.disconnected("the Flower server at \(config.host):\(config.port) ended the stream without instructions")
                    }
                    let wait = backoff.nextDelay()
                    logger.info("the Flower server ended the stream; joining again in \(wait)")
                    try await Task.sleep(for: wait)
                }
            }
        }
    }

    /// An address literal as an IP target (TLS then checks the certificate's IP entries: an IP
    /// cannot be sent as SNI), anything else as a DNS name.
    static func target(_ host: String, _ port: Int) -> any ResolvableTarget {
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        if parts.count == 4, parts.allSatisfy({ UInt8($0) != nil }) { return ResolvableTargets.IPv4.ipv4(address: host, port: port) }
        if host.contains(":") { return ResolvableTargets.IPv6.ipv6(address: host, port: port) }
        return ResolvableTargets.DNS.dns(host: host, port: port)
    }

    /// Counts of one run, shared with the response handler.
    final class Counter: Sendable {
        private let state = Mutex((fits: 0, messages: 0))
        var fits: Int { state.withLock { $0.fits } }
        var messages: Int { state.withLock { $0.messages } }
        func message() { state.withLock { $0.messages += 1 } }
        func fit() -> Int { state.withLock { $0.fits += 1; return $0.fits } }
    }

    /// One Join stream: answers instructions until ReconnectIns or the end of the stream.
    private static func session(_ grpc: GRPCClient<HTTP2ClientTransport.Posix>, config: FlowerCompatClientConfig, client: any Client,
                                reference: Parameters, counter: Counter, logger: Logger) async throws -> SessionEnd {
        let (outbound, out) = AsyncStream.makeStream(of: FlowerClientMessage.self)
        var options = CallOptions.defaults
        options.waitForReady = false
        options.maxResponseMessageBytes = config.maxMessageBytes
        options.maxRequestMessageBytes = config.maxMessageBytes
        let request = StreamingClientRequest<FlowerClientMessage> { writer in
            for await message in outbound { try await writer.write(message) }
        }
        return try await grpc.bidirectionalStreaming(request: request, descriptor: FlowerService.join, serializer: ClientMessageSerializer(),
                                                      deserializer: ServerMessageDeserializer(), options: options) { response in
            defer { out.finish() }
            for try await incoming in response.messages {
                let instruction = try incoming.get()
                counter.message()
                switch instruction {
                case .reconnect(let seconds):
                    out.yield(.disconnect(reason: FlowerReason.reconnect))
                    return seconds > 0 ? .reconnect(seconds: seconds) : .shutdown
                default:
                    out.yield(try await answer(instruction, client: client, reference: reference, counter: counter, logger: logger))
                }
            }
            return .streamEnded
        }
    }

    /// The ClientMessage answering one instruction. The `Client` is called through FlowerCore's
    /// `ClientDispatcher`, as on the native wire: a failed or throwing client answers with Flower's
    /// failure status of the kind (2, 3, 4) and the stream goes on. A FitIns/EvaluateIns whose
    /// tensors do not fit the local model ends the run (`CompatError.layoutMismatch`).
    static func answer(_ instruction: FlowerServerMessage, client: any Client, reference: Parameters, counter: Counter,
                       logger: Logger) async throws -> FlowerClientMessage {
        let dispatcher = ClientDispatcher(client: client, logger: logger)
        switch instruction {
        case .reconnect:
            return .disconnect(reason: FlowerReason.reconnect)
        case .getProperties:
            return .getPropertiesRes(status: .ok, properties: [:])
        case .getParameters(let config):
            return try await dispatcher.reply(to: .getParameters(GetParametersIns(config: config)), framing: message)
        case .fit(let tensors, let config):
            let parameters = try serverParameters(tensors, reference: reference, what: "FitIns")
            // Flower's FitIns carries no round: the FitIns answered so far count them.
            let round = counter.fit()
            return try await dispatcher.reply(to: .fit(FitIns(round: round, parameters: parameters, config: config)), framing: message)
        case .evaluate(let tensors, let config):
            let parameters = try serverParameters(tensors, reference: reference, what: "EvaluateIns")
            return try await dispatcher.reply(to: .evaluate(EvaluateIns(round: max(1, counter.fits), parameters: parameters, config: config)),
                                              framing: message)
        }
    }

    /// A client's reply as Flower's ClientMessage. Flower's Status has no "failed" codes: a
    /// failure goes out as the kind's code (GET_PARAMETERS_NOT_IMPLEMENTED 2, FIT_NOT_IMPLEMENTED
    /// 3, EVALUATE_NOT_IMPLEMENTED 4) with its message, which Flower's server counts as a failure.
    static func message(_ reply: ClientReply) -> FlowerClientMessage {
        switch reply {
        case .parameters(let res):
            guard res.status.code == .ok else {
                return .getParametersRes(status: FlowerStatus(code: 2, message: res.status.message), parameters: FlowerTensors())
            }
            return .getParametersRes(status: .ok, parameters: ParameterConversion.tensors(res.parameters))
        case .fit(let res):
            guard res.status.code == .ok else {
                return .fitRes(status: FlowerStatus(code: 3, message: res.status.message), parameters: FlowerTensors(), numExamples: 0, metrics: [:])
            }
            return .fitRes(status: .ok, parameters: ParameterConversion.tensors(res.parameters), numExamples: Int64(res.numExamples), metrics: res.metrics)
        case .evaluate(let res):
            guard res.status.code == .ok else {
                return .evaluateRes(status: FlowerStatus(code: 4, message: res.status.message), loss: 0, numExamples: 0, metrics: [:])
            }
            return .evaluateRes(status: .ok, loss: Float(res.loss), numExamples: Int64(res.numExamples), metrics: res.metrics)
        }
    }

    /// The server's tensors under the local model's names; a mismatch ends the run.
    private static func serverParameters(_ t: FlowerTensors, reference: Parameters, what: String) throws -> Parameters {
        do {
            return try ParameterConversion.parameters(t, like: reference)
        } catch {
            throw CompatError.layoutMismatch("\(what) from the Flower server does not fit this client's model: \(error); run the same model on both sides (--model)")
        }
    }
}
