// What each `flwr bench` figure accepts, checked on the benchmark's own configuration: the lists
// `flwr bench train` takes as text (parts, thread counts, input shapes) and the ranges of the wire
// and swarm benchmarks. The messages name the flag to change.
import FlowerRuntime
import WireLoadTest

extension TrainBenchmarkConfig {
    /// The figures `parts` may name.
    public static let knownParts: Set<String> = ["train", "infer", "gemm", "conv", "memory", "dpsgd"]

    /// Sets `parts`, `threadCounts` and `inputs` from their comma-separated flags (`threads` nil:
    /// 1,2, or 2 with `quick`), then checks every setting.
    public mutating func parse(only: String, threads: String?, input: String) throws(ConfigurationError) {
        parts = Set(only.split(separator: ",").map(String.init))
        threadCounts = threads.map { $0.split(separator: ",").map { Int($0) ?? 0 } } ?? (quick ? [2] : [1, 2])
        inputs = input.split(separator: ",").map { shape in
            let d = shape.split(separator: "x").map { Int($0) ?? 0 }
            return d.count == 3 ? (d[0], d[1], d[2]) : (0, 0, 0)
        }
        guard seconds > 0 else { throw .conflict(flag: "--seconds \(seconds)", reason: "must be > 0") }
        for part in only.split(separator: ",") where !Self.knownParts.contains(String(part)) {
            throw .conflict(flag: "--only \(part)", reason: "is unknown; use train, infer, gemm, conv, memory and/or dpsgd")
        }
        if inputs.isEmpty || inputs.contains(where: { $0.0 < 1 || $0.1 < 16 || $0.2 < 16 }) {
            throw .conflict(flag: "--input \(input)", reason: "must be CxHxW shapes with H, W >= 16, e.g. 1x28x28,3x32x32")
        }
        guard memoryImages >= 64 else { throw .conflict(flag: "--memory-images \(memoryImages)", reason: "must be >= 64") }
        if let threads, threadCounts.isEmpty || threadCounts.contains(where: { $0 < 1 }) {
            throw .conflict(flag: "--threads \(threads)", reason: "must be positive integers, e.g. 1,2")
        }
    }
}

extension WireBenchmarkConfig {
    /// Checks the model sizes (a frame holds at most 256 MiB) and the round trips.
    public func validate() throws(ConfigurationError) {
        guard params.allSatisfy({ $0 > 0 && $0 <= 60_000_000 }) else {
            throw .conflict(flag: "--params", reason: "must be between 1 and 60000000 (frames are limited to 256 MiB)")
        }
        guard roundTrips > 0 else { throw .conflict(flag: "--round-trips", reason: "must be at least 1") }
    }
}

extension ClientSwarmBenchmark {
    /// Checks the number of clients, the handshakes and instructions in flight, and the hold.
    public func validate() throws(ConfigurationError) {
        try check((1 ... 60_000).contains(config.count), "--clients", "in 1...60000", config.count)
        try check(config.concurrency >= 1, "--concurrency", "at least 1", config.concurrency)
        try check(config.processing >= 1, "--processing", "at least 1", config.processing)
        try check(hold >= 0, "--hold", ">= 0 seconds", hold)
    }

    private func check(_ ok: Bool, _ flag: String, _ requirement: String, _ value: some Any) throws(ConfigurationError) {
        if !ok { throw .outOfRange(flag: flag, requirement: requirement, value: "\(value)") }
    }
}
