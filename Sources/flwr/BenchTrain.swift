// `flwr bench train`: training/inference images/s of the reference CNN and GEMM GFLOPS
// (FlowerBench's TrainBenchmark).
import ArgumentParser
import FlowerBench

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
        guard seconds > 0 else { throw ValidationError("--seconds \(seconds) must be > 0") }
        let known: Set<String> = ["train", "infer", "gemm", "conv", "memory", "dpsgd"]
        for part in only.split(separator: ",") where !known.contains(String(part)) {
            throw ValidationError("--only \(part) is unknown; use train, infer, gemm, conv, memory and/or dpsgd")
        }
        if inputs.isEmpty || inputs.contains(where: { $0.0 < 1 || $0.1 < 16 || $0.2 < 16 }) {
            throw ValidationError("--input \(input) must be CxHxW shapes with H, W >= 16, e.g. 1x28x28,3x32x32")
        }
        guard memoryImages >= 64 else { throw ValidationError("--memory-images \(memoryImages) must be >= 64") }
        if let threads, threadCounts.isEmpty || threadCounts.contains(where: { $0 < 1 }) {
            throw ValidationError("--threads \(threads) must be positive integers, e.g. 1,2")
        }
    }

    /// The thread counts of the training figures.
    var threadCounts: [Int] {
        guard let threads else { return quick ? [2] : [1, 2] }
        return threads.split(separator: ",").map { Int($0) ?? 0 }
    }

    /// The --input shapes as (C, H, W).
    var inputs: [(Int, Int, Int)] {
        input.split(separator: ",").map { shape in
            let d = shape.split(separator: "x").map { Int($0) ?? 0 }
            return d.count == 3 ? (d[0], d[1], d[2]) : (0, 0, 0)
        }
    }

    func run() async throws {
        var c = TrainBenchmarkConfig(model: try modelOptions.selection())
        c.quick = quick; c.seconds = seconds; c.parts = Set(only.split(separator: ",").map(String.init))
        c.breakdown = breakdown; c.threadCounts = threadCounts; c.inputs = inputs
        c.memoryImages = memoryImages; c.seed = seed; c.printSpec = printSpec
        try TrainBenchmark(config: c).run()
    }
}
