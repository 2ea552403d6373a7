// `flwr bench`: the benchmark commands (one subcommand per subsystem).
import ArgumentParser

/// Parent of the benchmark subcommands; each prints JSON lines.
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Run benchmarks; each prints one JSON object per line.",
        subcommands: [BenchWire.self]
    )
}
