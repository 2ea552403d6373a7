import ArgumentParser
import FlowerCore

/// The `flwr` command: federated learning in one binary.
@main
struct Flwr: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flwr",
        abstract: "Federated learning in one binary: server, clients, simulation, training and deployment.",
        discussion: """
            Every option can also be set with an FLWR_* environment variable (e.g. --rounds with \
            FLWR_ROUNDS), for containers.
            """,
        version: flwrVersion,
        subcommands: [Bench.self]
    )
}
