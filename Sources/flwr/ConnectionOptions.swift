// `flwr server` flags for the transport's connection limits (FlowerWire on SwiftNIO).
import ArgumentParser

/// How many connections the server holds, how many may be handshaking, and how many large
/// answers it buffers at once.
struct ServerConnectionOptions: ParsableArguments {
    @Option(help: "Most TCP connections open at once, handshaking or registered (further ones get a SERVER_FULL refusal). The open-file limit is raised to its hard limit at start.") var maxConnections: Int = 16_384
    @Option(help: "Most connections that have not completed their handshake yet, over all addresses (a flood of idle connections cannot lock registered clients out).") var maxHandshakes: Int = 1024
    @Option(help: "Most connections that have not completed their handshake yet from one IP address.") var maxHandshakesPerAddress: Int = 128
    @Option(help: "Seconds a new connection has to complete its Hello.") var handshakeTimeout: Double = 10
    @Option(help: "Most large client answers (FitRes, ...) buffered at once over the wire and --flower-port together; other connections are not read until one is decoded. Default: 2 x cores. Server memory peaks near model size x this.") var maxBufferedPayloads: Int?

}
