// `flwr bench clients`: opens thousands of handshaken FlowerWire clients against a server, keeps
// them idle (answering any instruction like an echo client), and reports what it took.
import ArgumentParser
import FlowerBench
import FlowerRuntime
import FlowerWire
import WireLoadTest

/// Loads a FlowerWire server with many idle clients; prints JSON lines (BENCHMARKS.md, "Wire at scale").
struct BenchClients: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clients",
        abstract: "Open many handshaken idle FlowerWire clients against a server (loopback load test).",
        discussion: """
            Each client completes the real handshake, then waits; asked to fit it returns the model \
            it got plus 1e-3 on every value, asked to evaluate a loss of 0; Finish ends it. Clients \
            share the event loops (no thread each); at most --processing instructions are buffered \
            at once. Raises this process's open-file limit to its hard limit. Prints one JSON line \
            when all handshakes are done and one when the clients end (Finish, --hold, or SIGTERM).
            """
    )

    @Option(help: "Server to load, HOST:PORT.")
    var server: String = "127.0.0.1:8080"

    @Option(help: "Number of clients to open (at most 60000).")
    var clients: Int = 1000

    @Option(help: "Handshakes in flight at once (keep it under the server's --max-handshakes-per-address).")
    var concurrency: Int = 64

    @Option(help: "Instructions buffered and answered at once over all clients.")
    var processing: Int = 8

    @Option(help: "Seconds to keep the clients after the handshakes (0: until every client got Finish, or SIGTERM).")
    var hold: Double = 0

    @Flag(help: "Answer FitIns with a FIT_FAILED status instead of the model (instructions are read at once; for keeping thousands of clients in a round in which a real client trains).")
    var decline = false

    @Option(help: "Identity prefix (identities are PREFIX + index).")
    var idPrefix: String = "load-"

    @Option(help: "Shared secret, when the server requires one.")
    var authToken: String?

    func validate() throws {
        try validating { try benchmark().validate() }
    }

    func run() async throws {
        try await benchmark().run()
    }

    /// The library's form of these flags.
    func benchmark() throws -> ClientSwarmBenchmark {
        let (host, port) = try validating { try parseHostPort(server) }
        var config = LoadClientsConfig(host: host, port: port, count: clients)
        config.concurrency = concurrency; config.processing = processing; config.idPrefix = idPrefix
        config.decline = decline; config.authToken = authToken
        return ClientSwarmBenchmark(config: config, hold: hold)
    }
}
