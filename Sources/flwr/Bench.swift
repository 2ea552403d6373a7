// `flwr bench`: benchmarks that print one JSON line per figure, for scripts and BENCHMARKS.md.
import ArgumentParser

/// Parent of the benchmark subcommands (`flwr bench train`, `flwr bench wire`).
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure throughput; every figure is one JSON line on stdout.",
        subcommands: [BenchTrain.self, BenchWire.self, BenchClients.self]
    )
}
