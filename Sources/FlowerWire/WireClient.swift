// The client transport: connect (retrying with exponential backoff and jitter until the server is
// up), handshake, then answer each instruction by calling the user's FlowerCore `Client`.
import FlowerBase
import FlowerCore
import FlowerWireCodec
import Foundation
import Logging

/// How a client retries connecting: exponential backoff with jitter, bounded by attempts and/or time.
public struct RetryPolicy: Sendable {
    /// Delay before the first retry.
    public var initialDelay: Duration = .milliseconds(500)
    /// Largest delay between attempts.
    public var maxDelay: Duration = .seconds(10)
    /// Growth factor per failed attempt.
    public var multiplier: Double = 2
    /// Fraction of each delay drawn at random (0 = none, 1 = "full jitter").
    public var jitter: Double = 0.5
    /// Most consecutive failed attempts before giving up; nil = no limit.
    public var maxAttempts: Int?
    /// Longest time to keep trying after the last success; nil = no limit.
    public var deadline: Duration? = .seconds(600)
    /// Seed for the jitter; nil draws one from the system.
    public var seed: UInt64?

    /// Defaults: 0.5 s doubling to 10 s, ±50% jitter, give up after 10 minutes.
    public init(initialDelay: Duration = .milliseconds(500), maxDelay: Duration = .seconds(10),
                multiplier: Double = 2, jitter: Double = 0.5, maxAttempts: Int? = nil,
                deadline: Duration? = .seconds(600), seed: UInt64? = nil) {
        self.initialDelay = initialDelay
        self.maxDelay = maxDelay
        self.multiplier = multiplier
        self.jitter = jitter
        self.maxAttempts = maxAttempts
        self.deadline = deadline
        self.seed = seed
    }

    /// The backoff that spaces the retries: FlowerCore's `ReconnectBackoff` (the one backoff of
    /// the package; FlowerCompat's client uses it too) with these delays, seeded with `seed`.
    /// Retry k (from 0) waits min(maxDelay, initialDelay × multiplier^k) × (1 − jitter × u).
    public func backoff(seed: UInt64) -> ReconnectBackoff {
        ReconnectBackoff(initialDelay: initialDelay, multiplier: multiplier, maxDelay: maxDelay, jitter: jitter, seed: seed)
    }
}

/// Settings of a `WireClient`.
public struct WireClientConfig: Sendable {
    /// Server host name or address.
    public var host: String
    /// Server port.
    public var port: Int = 8080
    /// Identity, unique among connected clients.
    public var clientID: String
    /// Data partition this client trains on, if any.
    public var partition: Int?
    /// Shared secret proven to the server; nil when the server has none.
    public var authToken: String?
    /// Computes the token's HMAC proof (FlowerTLS.CryptoHandshakeMAC); required with a token.
    public var mac: (any HandshakeMAC)?
    /// Largest frame payload this client accepts (--max-frame-mb).
    public var maxFrameBytes: Int = 256 << 20
    /// Time allowed for connect + Challenge + Welcome.
    public var connectTimeout: Duration = .seconds(10)
    /// Time allowed to send one result frame.
    public var sendTimeout: Duration = .seconds(120)
    /// Whether to accept zlib compression (used only when it pays).
    public var acceptCompression: Bool = true
    /// Reconnection policy.
    public var retry: RetryPolicy = RetryPolicy()
    /// Keep freed frame buffers in the heap for the next round (`WireMemory.retainLargeBuffers`).
    public var retainFrameBuffers: Bool = true
    /// Free-form description sent in Hello.
    public var agent: String = "flwr/\(flwrVersion) swift"
    /// The model this client trains, "<name>|<layout digest>", sent in Hello ("" = unstated).
    public var model: String = ""
    /// Seeds the stochastic rounding of int8 updates (derived per round) when the server
    /// announces `--update-compression int8`; the client's own seed.
    public var updateSeed: UInt64 = 0
    /// Called with `true` when a session is established (Welcome received) and `false` when it
    /// ends, for readiness probes and metrics (FlowerOps); nil: nobody watches.
    public var onSessionChange: (@Sendable (Bool) -> Void)? = nil
    /// TLS (or another layer) around the connection; nil: plain TCP.
    public var security: (any ChannelSecurity)?

    /// A configuration for `clientID` connecting to `host:port`.
    public init(host: String, port: Int = 8080, clientID: String, partition: Int? = nil,
                authToken: String? = nil, maxFrameBytes: Int = 256 << 20,
                connectTimeout: Duration = .seconds(10), retry: RetryPolicy = RetryPolicy()) {
        self.host = host
        self.port = port
        self.clientID = clientID
        self.partition = partition
        self.authToken = authToken
        self.maxFrameBytes = maxFrameBytes
        self.connectTimeout = connectTimeout
        self.retry = retry
    }
}

/// Runs a FlowerCore `Client` against a FlowerWire server.
public enum WireClient {
    /// Connects (retrying until the server is up), serves instructions by calling `client`, and
    /// returns the rounds completed when the server sends Finish. Throws `WireError.refused` when
    /// the server refuses (bad credentials, version mismatch, duplicate identity, server full),
    /// `unreachable` when the retry budget runs out, and `CancellationError` when cancelled.
    public static func run(config: WireClientConfig, client: any Client, logger: Logger) async throws -> Int {
        if config.retainFrameBuffers { WireMemory.retainLargeBuffers(upTo: 2 * config.maxFrameBytes) }
        var backoff = config.retry.backoff(seed: config.retry.seed ?? UInt64.random(in: 0 ... .max))
        var failures = 0
        var since = Deadline.now
        let residual = UpdateResidual()  // top-k error feedback, across reconnects
        while true {
            try Task.checkCancellation()
            let session = Session(config: config, client: client, logger: logger, residual: residual)
            let outcome: Session.Outcome
            do {
                outcome = try await session.run()
            } catch let error as WireError where isRetryable(error) {
                failures += 1
                let elapsed = Duration.nanoseconds(Int64(Deadline.now.nanos - since.nanos)).seconds
                let outOfAttempts = config.retry.maxAttempts.map { failures >= $0 } ?? false
                let outOfTime = config.retry.deadline.map { elapsed >= $0.seconds } ?? false
                if outOfAttempts || outOfTime {
                    if case .refused = error { throw error }  // the server's own words, not "unreachable"
                    throw WireError.unreachable(host: config.host, port: config.port, attempts: failures, lastError: "\(error)")
                }
                let delay = backoff.nextDelay()
                logger.info("server \(config.host):\(config.port) not available (\(error)); retry \(failures) in \(String(format: "%.2f", delay.seconds)) s")
                try await Task.sleep(for: delay)
                continue
            }
            switch outcome {
            case .finished(let rounds):
                return rounds
            case .reconnect(let seconds):
                failures = 0
                backoff.reset()
                since = Deadline.now
                try await Task.sleep(for: .seconds(seconds))
            case .lost(let error):
                // The session had been established: start a fresh retry budget.
                failures = 1
                backoff.reset()
                since = Deadline.now
                logger.warning("connection to the server lost (\(error)); reconnecting")
                try await Task.sleep(for: backoff.nextDelay())
            }
        }
    }

    /// Connection-level failures worth retrying (server not up yet, restarting, network blip).
    static func isRetryable(_ error: WireError) -> Bool {
        switch error {
        case .system, .timeout, .connectionClosed, .truncatedFrame, .resolve: return true
        // A full server (or one busy with handshakes) is worth retrying with backoff, within
        // the retry budget; the log line says why.
        case .refused(let reason, _): return reason == .serverFull
        default: return false
        }
    }
}
