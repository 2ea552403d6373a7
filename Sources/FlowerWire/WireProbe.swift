// A health probe: connect, read the server's Challenge, hang up (the server logs it at debug).
import FlowerCore
import FlowerWireCodec

/// Checks that a FlowerWire server answers (for `flwr health` and readiness probes).
public enum WireProbe {
    /// Connects to `host:port`, reads the Challenge within `timeout`, and returns a one-line summary.
    /// With `security`, the probe speaks TLS (a TLS server sends nothing to a plain probe).
    public static func check(host: String, port: Int, timeout: Duration, security: (any ChannelSecurity)? = nil) async throws -> String {
        let deadline = Deadline.after(timeout)
        let connection = try await FrameConnection.connect(host: host, port: port, timeout: timeout, limit: helloFrameLimit,
                                                           security: security)
        defer { connection.close() }
        let message = try await connection.receive(timeout: deadline.remaining, what: "Challenge from \(host):\(port)")
            .withProtobufBytes(limit: helloFrameLimit) { try WireDecoder.serverMessage($0, allocator: nil) }
        let challenge: Challenge
        switch message {
        case .challenge(let c): challenge = c
        case .refusal(let r): throw WireError.refused(reason: r.reason, message: r.message)
        default: throw WireError.unexpectedMessage(got: message.kind, expected: "Challenge")
        }
        let compat = challenge.protocolVersion == flwrProtocolVersion ? "compatible" : "INCOMPATIBLE with this flwr (protocol \(flwrProtocolVersion))"
        return "flwr server at \(host):\(port): protocol \(challenge.protocolVersion) (\(compat)), "
            + "authentication \(challenge.authRequired ? "required" : "off"), max frame \(WireError.mib(challenge.maxFrameBytes)) MiB"
    }
}
