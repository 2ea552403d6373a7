// A health probe: connect, read the server's Challenge, hang up (the server logs it at debug).
import FlowerCore

/// Checks that a FlowerWire server answers (for `flwr health` and readiness probes).
public enum WireProbe {
    /// Connects to `host:port`, reads the Challenge within `timeout`, and returns a one-line summary.
    public static func check(host: String, port: Int, timeout: Duration) async throws -> String {
        let deadline = Deadline.after(timeout)
        let challenge: Challenge = try await onThread("flwr-probe") {
            let socket = try Socket.connect(host: host, port: port, deadline: deadline)
            defer { socket.close() }
            let io = FramedIO(socket: socket, counters: [])
            let message = try WireDecoder.serverMessage(
                io.readFrame(limit: helloFrameLimit, deadline: deadline, timeout: timeout, what: "Challenge from \(host):\(port)", peer: "the server"),
                limit: helloFrameLimit)
            guard case .challenge(let c) = message else { throw WireError.unexpectedMessage(got: message.kind, expected: "Challenge") }
            return c
        }
        let compat = challenge.protocolVersion == flwrProtocolVersion ? "compatible" : "INCOMPATIBLE with this flwr (protocol \(flwrProtocolVersion))"
        return "flwr server at \(host):\(port): protocol \(challenge.protocolVersion) (\(compat)), "
            + "authentication \(challenge.authRequired ? "required" : "off"), max frame \(WireError.mib(challenge.maxFrameBytes)) MiB"
    }
}
