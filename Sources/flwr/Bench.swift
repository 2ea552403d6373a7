// `flwr bench train|wire|clients`: benchmarks that print one JSON line per figure, for scripts and
// BENCHMARKS.md; each subcommand parses its flags into a FlowerBench configuration and runs it.
import ArgumentParser
import FlowerBench
import FlowerLearning
import FlowerRuntime
import FlowerWire
import WireLoadTest

/// Parent of the benchmark subcommands (`flwr bench train`, `flwr bench wire`).
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure throughput; every figure is one JSON line on stdout.",
        subcommands: [BenchTrain.self, BenchWire.self, BenchClients.self]
    )
}

/// Measures the training engine; prints JSON lines with the field names BENCHMARKS.md uses.
struct BenchTrain: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Training and inference images/s of a model (default: the reference CNN), and GEMM GFLOPS.",
        discussion: """
            Lines: {"bench":"train","input":"1x28x28","batch":32,"threads":2,"images_per_s":...}, \
            {"bench":"infer",...}, {"bench":"gemm","m":...,"n":...,"k":...,"threads":...,"gflops":...}.
            """
    )

    @Flag(help: "Only the 2-thread batch-32 training figures.") var quick = false
    @Option(help: "Seconds to measure each figure (after one warm-up).") var seconds: Double = 2
    @Option(help: "Figures to run: any of train, infer, gemm, conv (each conv layer's three GEMMs), memory (peak RSS of batch-64 training; run it alone in a fresh process), dpsgd (a plain epoch against a DP-SGD epoch at batch 256, and each one's time per phase), comma-separated.") var only: String = "train,infer,gemm"
    @Flag(help: "Also print where a training step's time goes (batch 32, each --threads count): one line per layer and pass.") var breakdown = false
    @Option(help: "Thread counts for the training figures and --breakdown, comma-separated (default: 1,2; --quick: 2).") var threads: String?
    @Option(help: "Inputs (CxHxW), comma-separated (default: 1x28x28,3x32x32).") var input: String = "1x28x28,3x32x32"
    @Option(help: "Images of synthetic data for --only memory (the dataset the peak is measured above).") var memoryImages: Int = 4096
    @Option(help: "Seed for the model and the synthetic data.") var seed: UInt64 = 1
    @OptionGroup var modelOptions: ModelOptions
    @Flag(help: "Print the model's spec (JSON, PyTorch names) for the first --input and exit (Benchmarks/pytorch_train.py builds its twin from it).") var printSpec = false

    func validate() throws { _ = try config(model: .reference) }

    func run() async throws { try TrainBenchmark(config: try config()).run() }

    /// The library's form of these flags (`model`: instead of reading --model/--model-spec).
    func config(model: ModelSelection? = nil) throws -> TrainBenchmarkConfig {
        var c = TrainBenchmarkConfig(model: try model ?? modelOptions.selection())
        c.quick = quick; c.seconds = seconds; c.breakdown = breakdown
        c.memoryImages = memoryImages; c.seed = seed; c.printSpec = printSpec
        try validating { try c.parse(only: only, threads: threads, input: input) }
        return c
    }
}

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

    @Option(name: .long, parsing: .upToNextOption, help: "Model sizes in parameters (390410 is the reference CNN).") var params: [Int] = [390_410, 10_000_000]
    @Option(name: .long, help: "Loopback round trips per configuration (the median is reported).") var roundTrips: Int = 20
    @Option(name: .long, help: "Seed for the parameter values.") var seed: UInt64 = 42
    @Flag(name: .long, help: "Also measure the uncompressed round trip inside mutual TLS 1.3, beside the plain one.") var tls = false

    func validate() throws { try validating { try config.validate() } }

    func run() async throws { try await WireBenchmark(config: config).run() }

    /// The library's form of these flags.
    var config: WireBenchmarkConfig {
        var c = WireBenchmarkConfig()
        c.params = params; c.roundTrips = roundTrips; c.seed = seed; c.tls = tls
        return c
    }
}

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

    @Option(help: "Server to load, HOST:PORT.") var server: String = "127.0.0.1:8080"
    @Option(help: "Number of clients to open (at most 60000).") var clients: Int = 1000
    @Option(help: "Handshakes in flight at once (keep it under the server's --max-handshakes-per-address).") var concurrency: Int = 64
    @Option(help: "Instructions buffered and answered at once over all clients.") var processing: Int = 8
    @Option(help: "Seconds to keep the clients after the handshakes (0: until every client got Finish, or SIGTERM).") var hold: Double = 0
    @Flag(help: "Answer FitIns with a FIT_FAILED status instead of the model (instructions are read at once; for keeping thousands of clients in a round in which a real client trains).") var decline = false
    @Option(help: "Identity prefix (identities are PREFIX + index).") var idPrefix: String = "load-"
    @Option(help: "Shared secret, when the server requires one.") var authToken: String?

    func validate() throws { try validating { try benchmark().validate() } }

    func run() async throws { try await benchmark().run() }

    /// The library's form of these flags.
    func benchmark() throws -> ClientSwarmBenchmark {
        let (host, port) = try validating { try parseHostPort(server) }
        var config = LoadClientsConfig(host: host, port: port, count: clients)
        config.concurrency = concurrency; config.processing = processing; config.idPrefix = idPrefix
        config.decline = decline; config.authToken = authToken
        return ClientSwarmBenchmark(config: config, hold: hold)
    }
}
