// The training engine's benchmark (`flwr bench train`): training and inference images/s of a
// model, where a training step's time goes, the GEMM GFLOPS of its 3x3 convolutions (shapes
// read from the model's own spec) and of square GEMMs, and the peak memory of training.
import CNNModel
import Dispatch
import FlowerLearning
import Foundation
import Tensor
#if canImport(Glibc)
import Glibc
#endif

/// What `TrainBenchmark` measures.
public struct TrainBenchmarkConfig: Sendable {
    public var model: ModelSelection
    /// Only the 2-thread batch-32 training figures.
    public var quick = false
    /// Seconds to measure each figure (after one warm-up).
    public var seconds = 2.0
    /// Any of train, infer, gemm, conv, memory, dpsgd.
    public var parts: Set<String> = ["train", "infer", "gemm"]
    public var breakdown = false
    public var threadCounts = [1, 2]
    /// Inputs as (C, H, W).
    public var inputs: [(Int, Int, Int)] = [(1, 28, 28), (3, 32, 32)]
    public var memoryImages = 4096
    public var seed: UInt64 = 1
    /// Print the model's spec for the first input instead of measuring.
    public var printSpec = false
    /// The command line that runs this benchmark in a child process of the same binary (for the
    /// memory figure, which needs a fresh process each).
    public var childArguments = ["bench", "train"]

    public init(model: ModelSelection) { self.model = model }
}

/// A benchmark that could not run.
public struct BenchError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Measures the training engine; each figure is one JSON line with the field names BENCHMARKS.md uses.
public struct TrainBenchmark {
    public let config: TrainBenchmarkConfig
    let emit: (String) -> Void
    var seed: UInt64 { config.seed }
    var seconds: Double { config.seconds }
    var memoryImages: Int { config.memoryImages }

    public init(config: TrainBenchmarkConfig, emit: @escaping (String) -> Void = { print($0) }) {
        self.config = config
        self.emit = emit
    }

    /// The model under test (--model / --model-spec; default the reference CNN) for C×H×W inputs and 10 classes.
    private func makeModel(c: Int, h: Int, w: Int, threads: Int) throws -> any Model {
        try config.model.build(input: .image(channels: c, height: h, width: w), classes: 10, seed: seed,
                                           threads: threads)
    }

    /// Runs the figures in `config.parts`, one JSON line each through `emit`.
    public func run() throws {
        let parts = config.parts, inputs = config.inputs, threadCounts = config.threadCounts
        let quick = config.quick, breakdown = config.breakdown
        if config.printSpec, let (c, h, w) = inputs.first {
            let spec = try config.model.networkSpec(input: .image(channels: c, height: h, width: w), classes: 10)
            emit(String(decoding: try spec.jsonData(), as: UTF8.self))
            return
        }
        let level = try KernelLevel.preferred()     // what the GEMM figures use (FLWR_KERNELS lowers it)
        if parts.contains("memory") {
            // A fresh process per figure: the peak of one must not hide inside another's.
            if inputs.count == 1 && threadCounts.count == 1 {
                try printMemory(c: inputs[0].0, h: inputs[0].1, w: inputs[0].2, threads: threadCounts[0])
            } else {
                for (c, h, w) in inputs {
                    for threads in threadCounts { try runChild(["--only", "memory", "--input", "\(c)x\(h)x\(w)",
                                                                "--threads", "\(threads)"]) }
                }
            }
            if parts.count == 1 { return }
        }
        if parts.contains("train") {
            for (c, h, w) in inputs {
                for batch in quick ? [32] : [32, 64] {
                    for threads in threadCounts {
                        // images_per_cpu_s: images per CPU-second of the whole process; at 1
                        // thread a loaded machine disturbs it far less than wall-clock images/s.
                        let (rate, perCPU) = try trainRate(c: c, h: h, w: w, batch: batch, threads: threads)
                        emit(#"{"bench":"train","input":"\#(c)x\#(h)x\#(w)","batch":\#(batch),"threads":\#(threads),"images_per_s":\#(fmt(rate)),"images_per_cpu_s":\#(fmt(perCPU))}"#)
                    }
                }
                if breakdown {
                    for threads in threadCounts { try printBreakdown(c: c, h: h, w: w, batch: 32, threads: threads) }
                }
            }
        }
        if parts.contains("dpsgd") {
            for (c, h, w) in inputs {
                for threads in threadCounts { try printDPSGD(c: c, h: h, w: w, batch: 256, threads: threads) }
            }
        }
        if quick { return }
        if parts.contains("infer") {
            for (c, h, w) in inputs {
                for threads in [1, 2] {
                    let rate = try inferRate(c: c, h: h, w: w, batch: 256, threads: threads)
                    emit(#"{"bench":"infer","input":"\#(c)x\#(h)x\#(w)","batch":256,"threads":\#(threads),"images_per_s":\#(fmt(rate))}"#)
                }
            }
        }
        if parts.contains("conv") {
            for (c, h, w) in inputs {
                for (i, layer) in try convLayers(c: c, h: h, w: w).enumerated() {
                    for threads in threadCounts {
                        for pass in ["forward", "weight_grad", "input_grad"] where !(i == 0 && pass == "input_grad") {
                            let (m, n, k, gflops) = try convGEMMRate(cin: layer.cin, cout: layer.cout, h: layer.h, w: layer.w, batch: 32,
                                                                     nchw: i == 0, pass: pass, threads: threads)
                            emit(#"{"bench":"conv_gemm","input":"\#(c)x\#(h)x\#(w)","layer":"\#(layer.name)","pass":"\#(pass)","m":\#(m),"n":\#(n),"k":\#(k),"threads":\#(threads),"level":"\#(level)","gflops":\#(fmt(gflops))}"#)
                        }
                    }
                }
            }
        }
        if parts.contains("gemm") {
            var shapes = [(256, 256, 256), (1024, 1024, 1024)]
            // Each 3x3 conv layer's forward GEMM at batch 32: (Cout, batch*H*W, Cin*9).
            for (c, h, w) in inputs {
                for layer in try convLayers(c: c, h: h, w: w) { shapes.append((layer.cout, 32 * layer.h * layer.w, layer.cin * 9)) }
            }
            for (m, n, k) in shapes {
                for threads in [1, 2] {
                    let gflops = try gemmRate(m: m, n: n, k: k, threads: threads)
                    emit(#"{"bench":"gemm","m":\#(m),"n":\#(n),"k":\#(k),"threads":\#(threads),"level":"\#(level)","gflops":\#(fmt(gflops))}"#)
                }
            }
        }
    }

    private func fmt(_ x: Double) -> String { String(Double(Int(x * 10)) / 10) }

    /// Runs `flwr bench train <args>` as a child process (same binary), its output passed through.
    private func runChild(_ args: [String]) throws {
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/proc/self/exe")
        child.arguments = config.childArguments + ["--seed", "\(seed)", "--memory-images", "\(memoryImages)"] + args
        try child.run()
        child.waitUntilExit()
        guard child.terminationStatus == 0 else {
            throw BenchError("bench child \(args.joined(separator: " ")) exited with \(child.terminationStatus)")
        }
    }

    /// Peak resident memory of training (batch 64, one epoch over `memoryImages` synthetic
    /// images) above the resident size once the dataset is in memory: VmRSS before the model
    /// exists, VmHWM after training, the high-water mark reset in between (/proc/self/clear_refs).
    private func printMemory(c: Int, h: Int, w: Int, threads: Int) throws {
        let (images, labels) = syntheticData(count: memoryImages, c: c, h: h, w: w)
        let reset = (try? "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)) != nil
        let before = procStatusKB("VmRSS")
        let examples: Int
        do {
            let model = try makeModel(c: c, h: h, w: w, threads: threads)
            examples = try images.withUnsafeBufferPointer { x in
                try labels.withUnsafeBufferPointer { y in
                    try model.train(images: x, labels: y, epochs: 1, batchSize: 64, sgd: SGDConfig(), seed: seed)
                }
            }.examples
        }
        let peak = procStatusKB("VmHWM")
        let above = Double(peak - before) / 1024, dataset = Double(images.count * 4 + labels.count * 4) / 1_048_576
        emit(#"{"bench":"memory","input":"\#(c)x\#(h)x\#(w)","batch":64,"threads":\#(threads),"images":\#(examples),"dataset_mb":\#(fmt(dataset)),"rss_before_mb":\#(fmt(Double(before) / 1024)),"peak_rss_mb":\#(fmt(Double(peak) / 1024)),"peak_rss_mb_above_dataset":\#(fmt(above)),"hwm_reset":\#(reset)}"#)
    }

    /// A "Name:   123 kB" field of /proc/self/status, in kB (0 if absent).
    private func procStatusKB(_ name: String) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix(name + ":") {
            return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
        }
        return 0
    }

    /// Runs `body` once to warm up, then repeatedly for `seconds`; returns units per second.
    private func measure(units: Double, _ body: () throws -> Void) rethrows -> Double {
        try measureWithCPU(units: units, body).perSecond
    }

    /// As `measure`, also returning units per CPU-second the process used meanwhile.
    private func measureWithCPU(units: Double, _ body: () throws -> Void) rethrows
        -> (perSecond: Double, perCPUSecond: Double) {
        try body()
        let start = DispatchTime.now().uptimeNanoseconds, cpuStart = processCPUSeconds()
        var runs = 0.0, elapsed = 0.0
        repeat {
            try body(); runs += 1
            elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        } while elapsed < seconds
        let cpu = processCPUSeconds() - cpuStart
        return (runs * units / elapsed, cpu > 0 ? runs * units / cpu : 0)
    }

    /// User + system CPU seconds of this process so far (getrusage).
    private func processCPUSeconds() -> Double {
        var usage = rusage()
        guard getrusage(RUSAGE_SELF.rawValue, &usage) == 0 else { return 0 }
        func secs(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
        return secs(usage.ru_utime) + secs(usage.ru_stime)
    }

    private func syntheticData(count: Int, c: Int, h: Int, w: Int) -> ([Float], [Int32]) {
        var rng = SplitMix64(seed: seed)
        let images = (0..<count * c * h * w).map { _ in Float.random(in: 0..<1, using: &rng) }
        let labels = (0..<count).map { _ in Int32.random(in: 0..<10, using: &rng) }
        return (images, labels)
    }

    private func trainRate(c: Int, h: Int, w: Int, batch: Int, threads: Int) throws
        -> (perSecond: Double, perCPUSecond: Double) {
        let model = try makeModel(c: c, h: h, w: w, threads: threads)
        let (images, labels) = syntheticData(count: batch * 8, c: c, h: h, w: w)
        return try images.withUnsafeBufferPointer { x in
            try labels.withUnsafeBufferPointer { y in
                try measureWithCPU(units: Double(labels.count)) {
                    _ = try model.train(images: x, labels: y, epochs: 1, batchSize: batch,
                                        sgd: SGDConfig(), seed: seed)
                }
            }
        }
    }

    /// Per-phase milliseconds per training step, from PhaseTimings.
    private func printBreakdown(c: Int, h: Int, w: Int, batch: Int, threads: Int) throws {
        let model = try makeModel(c: c, h: h, w: w, threads: threads)
        let (images, labels) = syntheticData(count: batch * 8, c: c, h: h, w: w)
        guard let network = model as? Network else { return }
        let timings = PhaseTimings(names: network.phaseNames)
        var steps = 0
        try images.withUnsafeBufferPointer { x in
            try labels.withUnsafeBufferPointer { y in
                _ = try model.train(images: x, labels: y, epochs: 1, batchSize: batch, sgd: SGDConfig(), seed: seed)
                network.timings = timings
                _ = try measure(units: 8) {
                    _ = try model.train(images: x, labels: y, epochs: 1, batchSize: batch, sgd: SGDConfig(), seed: seed)
                    steps += 8
                }
            }
        }
        for (name, secs) in zip(timings.names, timings.seconds) {
            let ms = secs * 1000 / Double(steps)
            emit(#"{"bench":"breakdown","input":"\#(c)x\#(h)x\#(w)","batch":\#(batch),"threads":\#(threads),"phase":"\#(name)","ms_per_step":\#(String(Double(Int(ms * 1000)) / 1000))}"#)
        }
    }

    /// A plain epoch against a DP-SGD epoch of the same model at the same (expected) batch, on
    /// the same synthetic data (8 batches): images/s of each, their ratio, and where the time of
    /// each goes per step (plain: forward, backward, SGD from PhaseTimings; DP-SGD: the phases of
    /// `DPSGDPhaseTimes`). Noise from the kernel-seeded CSPRNG every run uses. The two alternate
    /// in three rounds of `seconds` each, so a change of load on a shared machine hits both.
    private func printDPSGD(c: Int, h: Int, w: Int, batch: Int, threads: Int) throws {
        let (images, labels) = syntheticData(count: batch * 8, c: c, h: h, w: w)
        let plain = try makeModel(c: c, h: h, w: w, threads: threads)
        let private_ = try makeModel(c: c, h: h, w: w, threads: threads)
        guard let plainNet = plain as? Network else { throw BenchError("--only dpsgd needs a network model") }
        let settings = DPSGDSettings(maxGradNorm: 1, noiseMultiplier: 1, samplingRate: 1.0 / 8, physicalBatch: batch)
        let random = SecureDPSGDRandom()
        let plainTimes = PhaseTimings(names: plainNet.phaseNames), dpTimes = DPSGDPhaseTimes()
        var plainImages = 0.0, plainSeconds = 0.0, plainSteps = 0, dpImages = 0.0, dpSeconds = 0.0
        try images.withUnsafeBufferPointer { x in
            try labels.withUnsafeBufferPointer { y in
                func plainEpoch() throws -> Int {
                    try plain.train(images: x, labels: y, epochs: 1, batchSize: batch, sgd: SGDConfig(), seed: seed).examples
                }
                func dpEpoch(_ times: DPSGDPhaseTimes?) throws -> Int {
                    try trainDPSGD(private_, images: x, labels: y, steps: 8, settings: settings, sgd: SGDConfig(),
                                   random: random, phaseTimes: times).examples
                }
                _ = try plainEpoch(); _ = try dpEpoch(nil)     // warm-up: workspaces, pages
                plainNet.timings = plainTimes
                for _ in 0..<3 {
                    var start = DispatchTime.now().uptimeNanoseconds
                    repeat {
                        try plainImages += Double(plainEpoch()); plainSteps += 8
                    } while Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 < seconds
                    plainSeconds += Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                    start = DispatchTime.now().uptimeNanoseconds
                    repeat {
                        try dpImages += Double(dpEpoch(dpTimes))
                    } while Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 < seconds
                    dpSeconds += Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                }
                plainNet.timings = nil
            }
        }
        let plainRate = plainImages / plainSeconds, dpRate = dpImages / dpSeconds
        let head = #""input":"\#(c)x\#(h)x\#(w)","batch":\#(batch),"threads":\#(threads)"#
        emit(#"{"bench":"dpsgd",\#(head),"plain_images_per_s":\#(fmt(plainRate)),"dpsgd_images_per_s":\#(fmt(dpRate)),"dpsgd_epoch_over_plain":\#(String(Double(Int(plainRate / dpRate * 100)) / 100)),"dpsgd_steps":\#(dpTimes.steps)}"#)
        func ms(_ s: Double, _ steps: Int) -> String { String(Double(Int(s * 1000 / Double(max(1, steps)) * 100)) / 100) }
        let ops = plainNet.phaseNames.count, layers = (ops - 2) / 2
        let forward = plainTimes.seconds[0...layers].reduce(0, +)      // the ops' forwards and the loss
        let backward = plainTimes.seconds[(layers + 1)..<(ops - 1)].reduce(0, +)
        for (name, secs) in [("forward", forward), ("backward", backward), ("sgd", plainTimes.seconds[ops - 1])] {
            emit(#"{"bench":"dpsgd_phase",\#(head),"step":"plain","phase":"\#(name)","ms_per_step":\#(ms(secs, plainSteps))}"#)
        }
        for phase in DPSGDPhaseTimes.Phase.allCases {
            emit(#"{"bench":"dpsgd_phase",\#(head),"step":"dpsgd","phase":"\#(phase.name)","ms_per_step":\#(ms(dpTimes.seconds[phase.rawValue], dpTimes.steps))}"#)
        }
    }

    private func inferRate(c: Int, h: Int, w: Int, batch: Int, threads: Int) throws -> Double {
        let model = try makeModel(c: c, h: h, w: w, threads: threads)
        let (images, _) = syntheticData(count: batch, c: c, h: h, w: w)
        return try images.withUnsafeBufferPointer { x in
            try measure(units: Double(batch)) { _ = try model.logits(images: x, count: batch) }
        }
    }

    /// GFLOPS of one conv layer's GEMM at `batch` images (implicit im2col, as in training):
    /// forward Y = W·col, weight_grad dW = dY·colᵀ (the first layer's direct kernel where it
    /// applies, as in training), input_grad dX = col2im(Wᵀ·dY).
    private func convGEMMRate(cin: Int, cout: Int, h: Int, w: Int, batch: Int, nchw: Bool, pass: String,
                              threads: Int) throws -> (m: Int, n: Int, k: Int, gflops: Double) {
        let ws = try GEMMWorkspace(threads: threads)
        let x = nchw ? ImageLayout.nchw(batch, cin, h, w) : ImageLayout.cnhw(batch, cin, h, w)
        let q = batch * h * w, kk = cin * 9
        var rng = SplitMix64(seed: seed)
        let image = (0..<x.count).map { _ in Float.random(in: -1..<1, using: &rng) }
        let weight = (0..<cout * kk).map { _ in Float.random(in: -1..<1, using: &rng) }
        let dY = (0..<cout * q).map { _ in Float.random(in: -1..<1, using: &rng) }
        var out = [Float](repeating: 0, count: max(cout * q, x.count, cout * kk))
        let (m, n, k) = pass == "forward" ? (cout, q, kk) : pass == "weight_grad" ? (cout, kk, q) : (kk, q, cout)
        let gflops = image.withUnsafeBufferPointer { pi in weight.withUnsafeBufferPointer { pw in
            dY.withUnsafeBufferPointer { pg in out.withUnsafeMutableBufferPointer { po in
                guard let i = pi.baseAddress, let wt = pw.baseAddress, let g = pg.baseAddress,
                      let o = po.baseAddress else { return 0.0 }
                return measure(units: 2 * Double(m) * Double(n) * Double(k) / 1e9) {
                    switch pass {
                    case "forward":
                        gemmIm2col(m: cout, a: wt, aRS: kk, aCS: 1, image: i, x, kernel: 3, pad: 1, c: o, ldc: q,
                                   threads: threads, workspace: ws)
                    case "weight_grad":
                        if convWeightGradDirect(cout: cout, outGrad: g, image: i, x, kernel: 3, pad: 1, weightGrad: o,
                                                threads: threads, level: ws.level) { break }
                        gemmIm2colT(m: cout, a: g, aRS: q, aCS: 1, image: i, x, kernel: 3, pad: 1, c: o, ldc: kk,
                                    threads: threads, workspace: ws)
                    default:
                        gemmCol2im(kd: cout, a: wt, aRS: 1, aCS: kk, b: g, bRS: q, bCS: 1, output: o, x, kernel: 3,
                                   pad: 1, threads: threads, workspace: ws)
                    }
                }
            } }
        } }
        return (m, n, k, gflops)
    }

    private func gemmRate(m: Int, n: Int, k: Int, threads: Int) throws -> Double {
        let ws = try GEMMWorkspace(threads: threads)
        var rng = SplitMix64(seed: seed)
        let a = (0..<m * k).map { _ in Float.random(in: -1..<1, using: &rng) }
        let b = (0..<k * n).map { _ in Float.random(in: -1..<1, using: &rng) }
        var c = [Float](repeating: 0, count: m * n)
        return a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in
            c.withUnsafeMutableBufferPointer { pc in
                guard let ap = pa.baseAddress, let bp = pb.baseAddress, let cp = pc.baseAddress else { return 0 }
                return measure(units: 2 * Double(m) * Double(n) * Double(k) / 1e9) {
                    gemm(m: m, n: n, k: k, a: ap, aRS: k, aCS: 1, b: bp, bRS: n, bCS: 1,
                         c: cp, ldc: n, threads: threads, workspace: ws)
                }
            }
        } }
    }
}

/// A 3x3, stride-1, padding-1 convolution of the model (what the conv GEMM figures measure) and
/// the input it sees.
struct ConvLayerShape {
    let name: String
    let cin: Int, cout: Int, h: Int, w: Int
}

extension TrainBenchmark {
    /// The model's top-level 3x3 stride-1 padding-1 convolutions for a C×H×W input, with the
    /// input shape each sees (from the resolved spec).
    func convLayers(c: Int, h: Int, w: Int) throws -> [ConvLayerShape] {
        let spec = try config.model.networkSpec(input: .image(channels: c, height: h, width: w), classes: 10)
        var result: [ConvLayerShape] = []
        for layer in try spec.resolve(input: .image(channels: c, height: h, width: w), classes: nil) {
            guard let conv = layer.spec.convolution, conv.kernel == 3, conv.stride == 1, conv.padding == 1,
                  case let .image(cin, hh, ww) = layer.input else { continue }
            result.append(ConvLayerShape(name: "conv\(result.count + 1)", cin: cin, cout: conv.outChannels, h: hh, w: ww))
        }
        return result
    }
}
