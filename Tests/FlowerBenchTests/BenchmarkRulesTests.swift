// The flags of `flwr bench train|wire|clients` as the benchmarks' own configurations take and check them.
import FlowerBench
import FlowerLearning
import FlowerRuntime
import Testing
import WireLoadTest

@Suite struct BenchmarkRulesTests {
    /// The first rule `check` breaks, or nil.
    static func refusal(_ check: () throws -> Void) -> ConfigurationError? {
        do { try check(); return nil } catch let error as ConfigurationError { return error } catch {
            Issue.record("not a ConfigurationError: \(error)"); return nil
        }
    }

    @Test func trainListsParse() throws {
        var c = TrainBenchmarkConfig(model: .reference)
        try c.parse(only: "train,conv", threads: "1,4", input: "3x32x32")
        #expect(c.parts == ["train", "conv"])
        #expect(c.threadCounts == [1, 4])
        #expect(c.inputs.map { [$0.0, $0.1, $0.2] } == [[3, 32, 32]])
        c.quick = true
        try c.parse(only: "train", threads: nil, input: "1x28x28,3x32x32")
        #expect(c.threadCounts == [2])
        #expect(c.inputs.map { [$0.0, $0.1, $0.2] } == [[1, 28, 28], [3, 32, 32]])
        c.quick = false
        try c.parse(only: "train", threads: nil, input: "1x28x28")
        #expect(c.threadCounts == [1, 2])
    }

    @Test func trainRefusals() {
        var c = TrainBenchmarkConfig(model: .reference)
        #expect(Self.refusal { try c.parse(only: "train,fft", threads: nil, input: "1x28x28") }?.description
            == "--only fft is unknown; use train, infer, gemm, conv, memory and/or dpsgd")
        #expect(Self.refusal { try c.parse(only: "train", threads: nil, input: "1x8x8") }?.description
            == "--input 1x8x8 must be CxHxW shapes with H, W >= 16, e.g. 1x28x28,3x32x32")
        #expect(Self.refusal { try c.parse(only: "train", threads: "1,0", input: "1x28x28") }?.description
            == "--threads 1,0 must be positive integers, e.g. 1,2")
        c.seconds = 0
        #expect(Self.refusal { try c.parse(only: "train", threads: nil, input: "1x28x28") }?.description == "--seconds 0.0 must be > 0")
        c.seconds = 1; c.memoryImages = 10
        #expect(Self.refusal { try c.parse(only: "memory", threads: nil, input: "1x28x28") }?.description == "--memory-images 10 must be >= 64")
    }

    @Test func wireAndSwarmRanges() {
        var wire = WireBenchmarkConfig()
        #expect(Self.refusal { try wire.validate() } == nil)
        wire.params = [390_410, 60_000_001]
        #expect(Self.refusal { try wire.validate() }?.description == "--params must be between 1 and 60000000 (frames are limited to 256 MiB)")
        wire.params = [1]; wire.roundTrips = 0
        #expect(Self.refusal { try wire.validate() }?.description == "--round-trips must be at least 1")
        var clients = LoadClientsConfig(host: "127.0.0.1", port: 8080, count: 1000)
        #expect(Self.refusal { try ClientSwarmBenchmark(config: clients, hold: 0).validate() } == nil)
        #expect(Self.refusal { try ClientSwarmBenchmark(config: clients, hold: -1).validate() }?.description == "--hold must be >= 0 seconds, got -1.0")
        clients.count = 60_001
        #expect(Self.refusal { try ClientSwarmBenchmark(config: clients, hold: 0).validate() }?.description == "--clients must be in 1...60000, got 60001")
        clients.count = 10; clients.processing = 0
        #expect(Self.refusal { try ClientSwarmBenchmark(config: clients, hold: 0).validate() }?.description == "--processing must be at least 1, got 0")
    }
}
