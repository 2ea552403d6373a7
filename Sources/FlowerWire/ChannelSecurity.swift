// The hook through which a security layer (FlowerTLS: TLS 1.3 and mutual TLS) wraps the wire's
// connections without FlowerWire depending on it: FlowerWire builds no TLS code (scripts/fuzz-wire
// compiles this module alone and must not compile BoringSSL). With a `ChannelSecurity` the
// pipelines become
//
//   server: [security handlers] → ReadGate → frame decoder → idle → ServerSessionHandler
//   client: [security handlers] → ReadGate → frame decoder → FrameInbox
//
// and the 5-byte framing runs unchanged inside the secured stream (proto/README.md).
import FlowerWireCodec
import NIOCore

/// What the security layer knows about the peer of a connection, asked when its Hello arrives.
public enum PeerAuthorization: Sendable, Equatable {
    /// The layer proves nothing about the peer (plain TLS, or no TLS): the Hello's client ID stands.
    case anonymous
    /// The peer proved this identity (a client certificate's CN or SAN): the Hello must claim it.
    case identity(String)
    /// The peer proved an identity this server refuses; the message names it and the remedy.
    case refused(String)
}

/// A layer that secures a wire connection (e.g. TLS) by adding handlers at the head of its pipeline.
public protocol ChannelSecurity: Sendable {
    /// One line for the logs, e.g. "TLS 1.3, client certificates required".
    var summary: String { get }
    /// Adds this layer's handlers at the head of a new connection's pipeline (on its event loop,
    /// before the frame handlers are added).
    func secure(_ channel: any Channel) throws
    /// Server side, on the channel's event loop once a Hello has arrived (the handshake is over):
    /// who the peer proved to be.
    func authorize(_ channel: any Channel) -> PeerAuthorization
}
