import ArgumentEnvironment
import ArgumentParser
import FlowerCore
import FlowerWire
import Foundation

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
        subcommands: [ServerCommand.self, ClientCommand.self, SimulateCommand.self, TrainCommand.self,
                      PartitionCommand.self, PrivatizeCommand.self, PrivacyCommand.self, Deploy.self, Bench.self,
                      ExportCommand.self, CertsCommand.self]
    )

    /// Parses the command line with `FLWR_*` variables filling absent options
    /// (Environment.swift), then runs the selected subcommand.
    static func main() async {
        // Before any other thread allocates: large frames are reused instead of page-faulted in
        // on every round (WireMemory.swift).
        WireMemory.useOneArena()
        let arguments = Array(CommandLine.arguments.dropFirst())
        do {
            await main(try argumentsWithEnvironment(
                arguments, root: Flwr.self, environment: ProcessInfo.processInfo.environment))
        } catch {
            exit(withError: error)
        }
    }
}
