// `flwr bench train`: training/inference images/s of the reference CNN and GEMM GFLOPS
// (FlowerBench's TrainBenchmark).
import ArgumentParser
import FlowerBench
import FlowerLearning

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

    @Flag(help: "Only the 2-thread batch-32 training figures.")
    var quick = false

    @Option(help: "Seconds to measure each figure (after one warm-up).")
    var seconds: Double = 2

    @Option(help: "Figures to run: any of train, infer, gemm, conv (each conv layer's three GEMMs), memory (peak RSS of batch-64 training; run it alone in a fresh process), dpsgd (a plain epoch against a DP-SGD epoch at batch 256, and each one's time per phase), comma-separated.")
    var only: String = "train,infer,gemm"

    @Flag(help: "Also print where a training step's time goes (batch 32, each --threads count): one line per layer and pass.")
    var breakdown = false

    @Option(help: "Thread counts for the training figures and --breakdown, comma-separated (default: 1,2; --quick: 2).")
    var threads: String?

    @Option(help: "Inputs (CxHxW), comma-separated (default: 1x28x28,3x32x32).")
    var input: String = "1x28x28,3x32x32"

    @Option(help: "Images of synthetic data for --only memory (the dataset the peak is measured above).")
    var memoryImages: Int = 4096

    @Option(help: "Seed for the model and the synthetic data.")
    var seed: UInt64 = 1

    @OptionGroup var modelOptions: ModelOptions

    @Flag(help: "Print the model's spec (JSON, PyTorch names) for the first --input and exit (Benchmarks/pytorch_train.py builds its twin from it).")
    var printSpec = false

    func validate() throws {
        _ = try config(model: .reference)
    }

    func run() async throws {
        try TrainBenchmark(config: try config()).run()
    }

    /// The library's form of these flags (`model`: instead of reading --model/--model-spec).
    func config(model: ModelSelection? = nil) throws -> TrainBenchmarkConfig {
        var c = TrainBenchmarkConfig(model: try model ?? modelOptions.selection())
        c.quick = quick; c.seconds = seconds; c.breakdown = breakdown
        c.memoryImages = memoryImages; c.seed = seed; c.printSpec = printSpec
        try validating { try c.parse(only: only, threads: threads, input: input) }
        return c
    }
}
