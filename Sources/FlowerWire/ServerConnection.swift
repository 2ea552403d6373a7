// One server-side connection: its thread runs the handshake, registers a `WireClientProxy`, then
// serves the proxy's calls one at a time and watches the idle socket for a departure.
//
// Per-connection state (explicit, illegal transitions close the connection):
//   awaitingHello --Hello ok--> registered --(call)--> busy --(answer)--> registered
//        |                          |                     |
//        +--bad Hello: Refusal----> closed <--EOF/Goodbye-+--timeout/malformed/unexpected
import FlowerCore
import Foundation
import Logging
import Synchronization

/// What a call waits for after sending its instruction.
enum Expectation: Sendable {
    case parametersRes
    case fitRes(round: Int)
    case evaluateRes(round: Int)
    /// Nothing: the instruction ends the session (Finish, Reconnect).
    case close

    var description: String {
        switch self {
        case .parametersRes: return "ParametersRes"
        case .fitRes(let r): return "FitRes for round \(r)"
        case .evaluateRes(let r): return "EvaluateRes for round \(r)"
        case .close: return "nothing"
        }
    }
}

/// A call handed from the round loop to the connection's thread.
struct Job: Sendable {
    let frame: [UInt8]
    let expect: Expectation
    let deadline: Deadline
    let timeout: Duration
    let complete: @Sendable (Result<ClientMessage?, Error>) -> Void
}

struct ServerConnection {
    let server: WireServer
    let socket: Socket
    let peer: String
    let sessionID: String

    var config: WireServerConfig { server.config }
    var logger: Logger { server.logger }

    func run() {
        let io = FramedIO(socket: socket, counters: [server.counters])
        let nonce = WireServer.nonce()
        let handshakeDeadline = Deadline.after(config.handshakeTimeout)
        let hello: Hello
        do {
            let challenge = Challenge(protocolVersion: flwrProtocolVersion, nonce: nonce,
                                      authRequired: config.authToken != nil, maxFrameBytes: config.maxFrameBytes)
            try io.write(try WireEncoder.frame(.challenge(challenge)), deadline: handshakeDeadline,
                         timeout: config.handshakeTimeout, what: "Challenge to \(peer)")
            let frame = try io.readFrame(limit: min(helloFrameLimit, config.maxFrameBytes), deadline: handshakeDeadline,
                                         timeout: config.handshakeTimeout, what: "Hello from \(peer)", peer: peer)
            let message = try WireDecoder.clientMessage(frame, limit: helloFrameLimit)
            guard case .hello(let h) = message else {
                throw WireError.unexpectedMessage(got: message.kind, expected: "Hello")
            }
            hello = h
        } catch WireError.connectionClosed {
            logger.debug("connection from \(peer) closed before Hello (a probe?)")
            return
        } catch {
            logger.warning("handshake with \(peer) failed: \(error)")
            refuse(io, Refusal(reason: .protocolError, message: "\(error)"))
            return
        }
        if let refusal = check(hello, nonce: nonce) {
            logger.warning("refused \(hello.clientID.debugDescription) from \(peer) (\(refusal.reason)): \(refusal.message)")
            refuse(io, refusal)
            return
        }
        let proxy: WireClientProxy
        do {
            proxy = try WireClientProxy(hello: hello, sessionID: sessionID, peer: peer, socket: socket,
                                        zlib: config.compressionAllowed && hello.acceptsZlib,
                                        peerLimit: hello.maxFrameBytes > 0 ? hello.maxFrameBytes : config.maxFrameBytes,
                                        ownLimit: config.maxFrameBytes, logger: logger)
        } catch {
            logger.error("cannot serve \(hello.clientID) from \(peer): \(error)")
            return
        }
        guard server.track(proxy, fd: socket.fd) else { return }
        if case .failure(let why) = server.manager.register(proxy) {
            let reason: RefusalReason
            switch why {
            case .duplicateIdentity: reason = .duplicateIdentity
            case .serverFull: reason = .serverFull
            }
            logger.warning("refused \(hello.clientID.debugDescription) from \(peer): \(why)")
            refuse(io, Refusal(reason: reason, message: why.description))
            return
        }
        defer { server.manager.unregister(id: proxy.id) }
        do {
            let welcome = Welcome(protocolVersion: flwrProtocolVersion, sessionID: sessionID, zlib: proxy.zlib, model: config.model)
            try io.write(try WireEncoder.frame(.welcome(welcome)), deadline: handshakeDeadline,
                         timeout: config.handshakeTimeout, what: "Welcome to \(hello.clientID)")
        } catch {
            logger.warning("could not welcome \(hello.clientID) from \(peer): \(error)")
            proxy.closed(because: "\(error)")
            return
        }
        logger.info("client \(hello.clientID) joined from \(peer) (session \(sessionID), partition \(hello.partition.map(String.init) ?? "none"), \(hello.agent))")
        proxy.serve(io, idleTimeout: config.handshakeTimeout)
    }

    /// Why `hello` cannot join, if it cannot.
    func check(_ hello: Hello, nonce: [UInt8]) -> Refusal? {
        if hello.protocolVersion != flwrProtocolVersion {
            return Refusal(reason: .versionMismatch,
                           message: "client speaks protocol version \(hello.protocolVersion), server \(flwrProtocolVersion): run the same flwr release on both sides")
        }
        if let token = config.authToken {
            let expected = HMACSHA256.proof(token: token, nonce: nonce, clientID: hello.clientID)
            guard HMACSHA256.constantTimeEqual(expected, hello.authProof) else {
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

    /// Sends a Refusal (best effort, 1 s) and closes gracefully.
    func refuse(_ io: FramedIO, _ refusal: Refusal) {
        if let frame = try? WireEncoder.frame(.refusal(refusal)) {
            try? io.write(frame, deadline: .after(.seconds(1)), timeout: .seconds(1), what: "Refusal")
        }
        io.lingeringClose(within: .seconds(1))
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
    return "the client trains \(cn.debugDescription) but the server runs \(sn.debugDescription) (different parameter layouts): "
        + "start the clients with the server's --model/--model-spec and dataset"
}
