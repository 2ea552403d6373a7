// The server's handle on one connected client: FlowerCore's `ClientProxy` over a FlowerWire
// connection. Calls are handed to the connection's own thread (which owns the socket) and
// awaited; a call on a closed connection throws at once, a late answer throws `timeout`, and any
// malformed or out-of-sequence answer throws and closes this connection only.
import FlowerCore
import Foundation
import Logging
import Synchronization

/// `ClientProxy` for one FlowerWire connection.
public final class WireClientProxy: ClientProxy, Sendable {
    private enum Mailbox {
        case open(pending: Job?, busy: Bool)
        case closed(String)
    }

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
    let peerLimit: Int
    let ownLimit: Int
    private let socket: Socket
    private let wake: WakePipe
    private let mailbox = Mutex(Mailbox.open(pending: nil, busy: false))
    private let logger: Logger

    init(hello: Hello, sessionID: String, peer: String, socket: Socket, zlib: Bool,
         peerLimit: Int, ownLimit: Int, logger: Logger) throws {
        id = hello.clientID
        partition = hello.partition
        self.sessionID = sessionID
        self.peer = peer
        self.socket = socket
        self.zlib = zlib
        self.peerLimit = peerLimit
        self.ownLimit = ownLimit
        self.logger = logger
        wake = try WakePipe()
    }

    /// Whether the connection is still open.
    public var isConnected: Bool {
        mailbox.withLock { if case .open = $0 { return true } else { return false } }
    }

    // MARK: ClientProxy

    public func getParameters(_ ins: GetParametersIns, timeout: Duration) async throws -> ParametersRes {
        let frame = try WireEncoder.frame(.getParameters(ins), compression: zlib, peerLimit: peerLimit)
        guard case .parametersRes(let res)? = try await call(frame, .parametersRes, timeout: timeout) else {
            throw WireError.unexpectedMessage(got: "nothing", expected: "ParametersRes")
        }
        return res
    }

    public func fit(_ ins: FitIns, timeout: Duration) async throws -> FitRes {
        let frame = try WireEncoder.frame(.fit(ins), compression: zlib, peerLimit: peerLimit)
        guard case .fitRes(let res)? = try await call(frame, .fitRes(round: ins.round), timeout: timeout) else {
            throw WireError.unexpectedMessage(got: "nothing", expected: "FitRes")
        }
        return res
    }

    public func evaluate(_ ins: EvaluateIns, timeout: Duration) async throws -> EvaluateRes {
        let frame = try WireEncoder.frame(.evaluate(ins), compression: zlib, peerLimit: peerLimit)
        guard case .evaluateRes(let res)? = try await call(frame, .evaluateRes(round: ins.round), timeout: timeout) else {
            throw WireError.unexpectedMessage(got: "nothing", expected: "EvaluateRes")
        }
        return res
    }

    public func finish(roundsCompleted: Int, reason: String) async {
        await sendFinal(.finish(roundsCompleted: roundsCompleted, reason: reason))
    }

    public func reconnect(seconds: Int, reason: String) async {
        await sendFinal(.reconnect(seconds: seconds, reason: reason))
    }

    private func sendFinal(_ message: ServerMessage) async {
        do {
            let frame = try WireEncoder.frame(message, peerLimit: peerLimit)
            _ = try await call(frame, .close, timeout: .seconds(5))
        } catch {
            logger.debug("\(message.kind) to \(id) not delivered: \(error)")
        }
    }

    // MARK: Mailbox (any thread → connection thread)

    private func call(_ frame: [UInt8], _ expect: Expectation, timeout: Duration) async throws -> ClientMessage? {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<ClientMessage?, Error>) in
                let job = Job(frame: frame, expect: expect, deadline: .after(timeout), timeout: timeout,
                              complete: { continuation.resume(with: $0) })
                let refusal: WireError? = mailbox.withLock { box in
                    switch box {
                    case .closed(let why):
                        return .notReady("client \(id) is disconnected (\(why)); it must reconnect before it gets instructions")
                    case .open(let pending, let busy):
                        if pending != nil || busy {
                            return .notReady("client \(id) is still answering an earlier call; call it once at a time")
                        }
                        box = .open(pending: job, busy: false)
                        return nil
                    }
                }
                if let refusal {
                    continuation.resume(throwing: refusal)
                } else {
                    wake.notify()
                }
            }
        } onCancel: {
            abort(reason: "the call was cancelled")
        }
    }

    /// Closes the connection from any thread; the pending or running call fails.
    func abort(reason: String) {
        let job: Job? = mailbox.withLock { box in
            guard case .open(let pending, _) = box else { return nil }
            box = .closed(reason)
            return pending
        }
        job?.complete(.failure(WireError.connectionClosed("the server (\(reason))")))
        socket.shutdown()
        wake.notify()
    }

    /// Marks the connection closed (connection thread), failing a call that was never taken.
    func closed(because reason: String) {
        let job: Job? = mailbox.withLock { box in
            guard case .open(let pending, _) = box else { return nil }
            box = .closed(reason)
            return pending
        }
        job?.complete(.failure(WireError.connectionClosed("\(id) (\(reason))")))
    }

    // MARK: Connection thread

    /// Serves calls until the connection ends (runs on the connection's thread).
    func serve(_ io: FramedIO, idleTimeout: Duration) {
        let io = FramedIO(socket: io.socket, counters: io.counters + [counters])
        var reason = "the connection ended"
        defer { closed(because: reason) }
        while true {
            var fds = [pollfd(fd: socket.fd, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: wake.readFD, events: Int16(POLLIN), revents: 0)]
            if poll(&fds, 2, -1) < 0 {
                if errno == EINTR { continue }
                reason = "\(Sys.error("poll", errno))"
                logger.error("client \(id): \(reason)")
                return
            }
            if fds[1].revents != 0 { wake.drain() }
            let taken: (job: Job?, open: Bool) = mailbox.withLock { box in
                guard case .open(let pending, _) = box else { return (nil, false) }
                if pending != nil { box = .open(pending: nil, busy: true) }
                return (pending, true)
            }
            guard taken.open else { reason = "closed by the server"; return }
            if let job = taken.job {
                // The mailbox is updated before the caller resumes, so its next call sees the truth.
                let result = perform(job, io)
                if case .failure(let error) = result {
                    reason = "\(error)"
                    closed(because: reason)
                    job.complete(result)
                    logger.warning("client \(id): \(error); closing its connection")
                    return
                }
                if case .close = job.expect {
                    reason = "session ended by the server"
                    closed(because: reason)
                    job.complete(result)
                    io.lingeringClose(within: .seconds(2))
                    return
                }
                mailbox.withLock { box in if case .open = box { box = .open(pending: nil, busy: false) } }
                job.complete(result)
                continue
            }
            if fds[0].revents != 0 {
                // Bytes while idle: the only legal ones are Goodbye or the end of the stream.
                do {
                    let frame = try io.readFrame(limit: ownLimit, deadline: .after(idleTimeout), timeout: idleTimeout,
                                                 what: "a message from \(id)", peer: id)
                    let message = try WireDecoder.clientMessage(frame, limit: ownLimit)
                    if case .goodbye(let why) = message {
                        reason = "said goodbye: \(why)"
                        logger.info("client \(id) left: \(why)")
                    } else {
                        reason = "sent \(message.kind) without an instruction"
                        logger.warning("client \(id) \(reason); closing its connection")
                    }
                } catch WireError.connectionClosed {
                    reason = "disconnected"
                    logger.info("client \(id) disconnected")
                } catch {
                    reason = "\(error)"
                    logger.warning("client \(id): \(error); closing its connection")
                }
                return
            }
        }
    }

    /// Sends one instruction and reads its answer by the job's deadline.
    private func perform(_ job: Job, _ io: FramedIO) -> Result<ClientMessage?, Error> {
        Result {
            try io.write(job.frame, deadline: job.deadline, timeout: job.timeout, what: "an instruction to \(id)")
            if case .close = job.expect { return nil }
            let frame = try io.readFrame(limit: ownLimit, deadline: job.deadline, timeout: job.timeout,
                                         what: "\(job.expect.description) from \(id)", peer: id)
            let message = try WireDecoder.clientMessage(frame, limit: ownLimit)
            switch (job.expect, message) {
            case (.parametersRes, .parametersRes): return message
            case (.fitRes(let round), .fitRes(let res)) where res.round == round: return message
            case (.evaluateRes(let round), .evaluateRes(let res)) where res.round == round: return message
            case (_, .goodbye(let why)): throw WireError.connectionClosed("\(id) (goodbye: \(why))")
            case (_, .fitRes(let res)): throw WireError.unexpectedMessage(got: "FitRes for round \(res.round)", expected: job.expect.description)
            case (_, .evaluateRes(let res)): throw WireError.unexpectedMessage(got: "EvaluateRes for round \(res.round)", expected: job.expect.description)
            default: throw WireError.unexpectedMessage(got: message.kind, expected: job.expect.description)
            }
        }
    }
}

/// The server loop reports per-round traffic from these cumulative per-connection counters.
extension WireClientProxy: TrafficCounting {
    public var bytesIn: UInt64 { UInt64(counters.bytesIn) }
    public var bytesOut: UInt64 { UInt64(counters.bytesOut) }
}
