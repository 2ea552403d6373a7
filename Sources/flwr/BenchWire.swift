// `flwr bench wire`: FlowerWire encode+decode throughput and loopback FitIns/FitRes round trips.
import ArgumentParser
import FlowerBench

/// Benchmarks the FlowerWire protocol; prints JSON lines (see BENCHMARKS.md, "Wire").
struct BenchWire: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wire",
        abstract: "Measure FlowerWire encode+decode throughput and loopback FitIns/FitRes round trips.",
        discussion: """
            For each model size, with compression off and on: encode+decode of a FitIns frame \
            (MB/s of float32 parameters), then FitIns→FitRes over loopback TCP (ms). With --tls, \
            also the uncompressed round trip inside mutual TLS 1.3 (certificates from `flwr certs` \
            in a temporary folder) and its cost against the plain one. Ends with the process's \
            peak resident memory. Build with -c release.
            """
    )

    @Option(name: .long, parsing: .upToNextOption, help: "Model sizes in parameters (390410 is the reference CNN).")
    var params: [Int] = [390_410, 10_000_000]

    @Option(name: .long, help: "Loopback round trips per configuration (the median is reported).")
    var roundTrips: Int = 20

    @Option(name: .long, help: "Seed for the parameter values.")
    var seed: UInt64 = 42

    @Flag(name: .long, help: "Also measure the uncompressed round trip inside mutual TLS 1.3, beside the plain one.")
    var tls = false

    func validate() throws {
        try validating { try config.validate() }
    }

    func run() async throws {
        try await WireBenchmark(config: config).run()
    }

    /// The library's form of these flags.
    var config: WireBenchmarkConfig {
        var c = WireBenchmarkConfig()
        c.params = params; c.roundTrips = roundTrips; c.seed = seed; c.tls = tls
        return c
    }
}
