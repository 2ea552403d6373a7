// `flwr server --flower-port`: Flower's legacy `FlowerService/Join` served over HTTP/2 with
// grpc-swift-2 and grpc-swift-nio-transport, on the process's NIO event loops (the singleton group
// FlowerWire uses too). Every Join stream becomes a `FlowerClientProxy` registered in the same
// `ClientManager` as the FlowerWire clients, so one round loop drives both kinds of client.
import FlowerCore
import FlowerWireCodec
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import NIOPosix
import Synchronization

/// Settings of the Flower-protocol listener.
public struct FlowerCompatServerConfig: Sendable {
    /// Address to listen on.
    public var host: String
    /// TCP port (0: any free port).
    public var port: Int
    /// Largest gRPC message accepted from a client (Flower's default: 512 MiB).
    public var maxMessageBytes: Int
    /// PEM certificate chain and private key files for TLS; nil: plaintext (as Flower's `start_server` without certificates).
    public var tls: (certificateChain: String, privateKey: String)?
    /// The server model's parameters when it has one: the names and shapes Flower clients' answers
    /// to GetParametersIns must follow.
    public var reference: Parameters?
    /// The K payload slots: answers of at least `PayloadSlots.threshold` bytes are decoded only
    /// while their stream holds one, and a stream waiting for a slot is not read further. `flwr
    /// server` passes the native wire's pool, so --max-buffered-payloads bounds both ports together.
    public var payloadSlots: PayloadSlots

    /// `payloadSlots` nil: a pool of its own with 2 x cores slots (the wire's default K).
    public init(host: String = "0.0.0.0", port: Int = 9092, maxMessageBytes: Int = CompatLimits.defaultMaxMessageBytes,
                tls: (certificateChain: String, privateKey: String)? = nil, reference: Parameters? = nil,
                payloadSlots: PayloadSlots? = nil) {
        self.host = host
        self.port = port
        self.maxMessageBytes = maxMessageBytes
        self.tls = tls
        self.reference = reference
        self.payloadSlots = payloadSlots ?? PayloadSlots(capacity: 2 * ProcessInfo.processInfo.activeProcessorCount)
    }
}

/// The Join service: registers each stream's proxy in the client manager.
struct FlowerJoinService: RegistrableRPCService {
    let manager: any ClientManager
    let reference: Parameters?
    /// A round's FitIns/EvaluateIns encoded once for every Flower client.
    let broadcast: EncodeOnce<[UInt8]>
    /// Large answers wait for one of these before they are decoded.
    let slots: PayloadSlots
    /// The group the transport serves on: each stream's call deadlines run on one of its loops.
    let group: MultiThreadedEventLoopGroup
    let logger: Logger

    func registerMethods<Transport: ServerTransport>(with router: inout RPCRouter<Transport>) {
        router.registerHandler(forMethod: FlowerService.join, deserializer: ClientMessageDeserializer(),
                               serializer: EncodedSerializer()) { request, context in
            StreamingServerResponse { writer in
                try await self.serve(request.messages, writer: writer, peer: context.remotePeer)
                return [:]
            }
        }
    }

    /// Runs one Join stream until the proxy closes it or the client goes away.
    private func serve(_ inbound: RPCAsyncSequence<IncomingClientMessage, any Error>,
                       writer: RPCWriter<[UInt8]>, peer: String) async throws {
        let (outbound, continuation) = AsyncStream.makeStream(of: [UInt8].self)
        let id = "flower-" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(12)
        let proxy = FlowerClientProxy(id: id, peer: peer, outbound: continuation, reference: reference,
                                      broadcast: broadcast, clock: EventLoopClock(group.next()), logger: logger)
        if case .failure(let refusal) = manager.register(proxy) {
            logger.warning("Flower client from \(peer) refused: \(refusal)")
            throw RPCError(code: .resourceExhausted, message: refusal.description)
        }
        logger.info("Flower client \(id) joined from \(peer) (\(manager.count) clients connected)")
        defer {
            manager.unregister(proxy)
            logger.info("Flower client \(id) left (\(manager.count) clients connected)")
        }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                do {
                    for try await incoming in inbound {
                        // A large answer waits here, undecoded, until a slot frees; meanwhile this
                        // stream is not read further (HTTP/2 flow control then stops its client).
                        var slot: PayloadSlot?
                        if incoming.bytes >= PayloadSlots.threshold { slot = try await slots.acquire() }
                        proxy.deliver(incoming.decode(), bytes: incoming.bytes, slot: slot)
                    }
                    proxy.close(reason: "the client closed its stream", failure: nil)
                } catch {
                    proxy.close(reason: "the stream failed: \(error)", failure: nil)
                }
            }
            for await message in outbound {
                do {
                    try await writer.write(message)
                } catch {
                    proxy.close(reason: "cannot send an instruction: \(error)", failure: nil)
                }
            }
            group.cancelAll()
        }
        if let failure = proxy.failure {
            switch failure {
            case .timeout: throw RPCError(code: .deadlineExceeded, message: failure.description)
            default: throw RPCError(code: .invalidArgument, message: failure.description)
            }
        }
    }
}

/// The Flower-protocol listener of `flwr server`.
public final class FlowerCompatServer: Sendable {
    private let server: GRPCServer<HTTP2ServerTransport.Posix>
    private let transport: HTTP2ServerTransport.Posix
    private let config: FlowerCompatServerConfig
    private let logger: Logger
    private let task = Mutex<Task<Void, Never>?>(nil)
    private let broadcast = EncodeOnce<[UInt8]>()

    /// Broadcast instructions encoded so far, and the times one encoding was sent again.
    public var broadcastStats: (built: Int, reused: Int) { broadcast.stats }

    /// Most payload slots held at once so far (over every listener sharing the pool).
    public var peakBufferedPayloads: Int { config.payloadSlots.peakHeld }

    /// A listener registering Flower clients into `manager`.
    public init(config: FlowerCompatServerConfig, manager: any ClientManager, logger: Logger) throws {
        self.config = config
        self.logger = logger
        let security: HTTP2ServerTransport.Posix.TransportSecurity
        if let tls = config.tls {
            security = .tls(certificateChain: [.file(path: tls.certificateChain, format: .pem)],
                            privateKey: .file(path: tls.privateKey, format: .pem))
        } else {
            security = .plaintext
        }
        let limit = config.maxMessageBytes
        let group = MultiThreadedEventLoopGroup.singleton
        transport = HTTP2ServerTransport.Posix(
            address: .ipv4(host: config.host, port: config.port), transportSecurity: security,
            config: .defaults {
                $0.rpc.maxRequestPayloadSize = limit
                $0.http2.maxConcurrentStreams = CompatLimits.maxStreamsPerConnection
                $0.connection.maxIdleTime = CompatLimits.maxIdleTime
            }, eventLoopGroup: group)
        server = GRPCServer(transport: transport, services: [FlowerJoinService(manager: manager, reference: config.reference,
                                                                                 broadcast: broadcast, slots: config.payloadSlots,
                                                                                 group: group, logger: logger)])
    }

    /// Starts listening; returns the bound port.
    public func start() async throws -> Int {
        let server = self.server, logger = self.logger
        let t = Task {
            do {
                try await server.serve()
            } catch {
                logger.error("Flower-protocol listener stopped: \(error)")
            }
        }
        task.withLock { $0 = t }
        let address = try await transport.listeningAddress
        guard let port = address.ipv4?.port ?? address.ipv6?.port else {
            throw CompatError.disconnected("the Flower-protocol listener has no TCP address (\(address))")
        }
        return port
    }

    /// Stops accepting streams and waits for the open ones to end, cancelling those still open
    /// after `grace` (a Flower client that never answers its ReconnectIns).
    public func stop(grace: Duration = .seconds(5)) async {
        server.beginGracefulShutdown()
        guard let t = task.withLock({ $0 }) else { return }
        let timer = Task {
            try await Task.sleep(for: grace)
            t.cancel()
        }
        await t.value
        timer.cancel()
    }
}
