// DP-SGD in the engine: per-example norms and the clipped sum against one-example passes (the
// plain backward, itself checked by finite differences and against PyTorch), the bound clipping
// puts on one example's influence, the noise's standard deviation, and chunked batches.
import Foundation
import Testing
@testable import CNNModel
@testable import Tensor

/// Seeded DP-SGD randomness for tests (runs use the Privacy module's kernel CSPRNG).
final class SeededDPSGDRandom: DPSGDRandomSource {
    var rng: SplitMix64
    /// When set, every step's sample is exactly this.
    let fixedSample: [Int]?
    init(seed: UInt64, fixedSample: [Int]? = nil) { rng = SplitMix64(seed: seed); self.fixedSample = fixedSample }
    func poissonSample(count: Int, rate: Double) -> [Int] {
        fixedSample ?? (0..<count).filter { _ in Double.random(in: 0..<1, using: &rng) < rate }
    }
    func addGaussianNoise(_ values: UnsafeMutableBufferPointer<Float>, std: Double) {
        for i in values.indices {
            let u = Double.random(in: Double.ulpOfOne..<1, using: &rng), v = Double.random(in: 0..<1, using: &rng)
            values[i] += Float((-2 * log(u)).squareRoot() * cos(2 * .pi * v) * std)
        }
    }
}

private func spec(_ json: String) throws -> NetworkSpec { try NetworkSpec(json: Data(json.utf8)) }

struct PerExampleTests {
    /// (name, spec, input): convolutions of every geometry, GroupNorm, a residual with a conv
    /// shortcut and one straight on the NCHW input, both pools, fused and standalone ReLUs, linear.
    static let networks: [(String, String, TensorShape)] = [
        ("every layer", """
            [{"type": "residual", "body": [{"type": "conv2d", "out_channels": 2, "kernel_size": 3, "padding": 1},
                                           {"type": "groupnorm", "num_groups": 1}]},
             {"type": "relu"}, {"type": "conv2d", "out_channels": 4, "kernel_size": 5, "stride": 2, "padding": 2},
             {"type": "maxpool2d", "kernel_size": 3, "stride": 1, "padding": 1}, {"type": "avgpool2d", "kernel_size": 2},
             {"type": "residual", "body": [{"type": "conv2d", "out_channels": 6, "kernel_size": 1}],
              "shortcut": [{"type": "conv2d", "out_channels": 6, "kernel_size": 3, "padding": 1}, {"type": "relu"}]},
             {"type": "global_avgpool"}, {"type": "flatten"},
             {"type": "linear", "out_features": 5}, {"type": "relu"}, {"type": "linear", "out_features": 3}]
            """, .image(channels: 2, height: 9, width: 10)),
        ("cnn4-like", """
            [{"type": "conv2d", "out_channels": 4, "kernel_size": 3, "padding": 1}, {"type": "relu"},
             {"type": "maxpool2d", "kernel_size": 2},
             {"type": "conv2d", "out_channels": 6, "kernel_size": 3, "padding": 1}, {"type": "relu"},
             {"type": "maxpool2d", "kernel_size": 2}, {"type": "flatten"},
             {"type": "linear", "out_features": 8}, {"type": "relu"}, {"type": "linear", "out_features": 3}]
            """, .image(channels: 1, height: 8, width: 8)),
        ("mlp", #"[{"type": "linear", "out_features": 6}, {"type": "relu"}, {"type": "linear", "out_features": 3}]"#, .vector(7)),
    ]

    @Test(arguments: networks)
    func clippedSumIsTheSumOfClippedOneExampleGradients(_ net: (String, String, TensorShape)) throws {
        let m = try Network(spec: try spec(net.1), input: net.2, classes: 3, seed: 3, threads: 2)
        for e in m.parameterEntries where e.shape.count == 1 { for i in e.offset..<(e.offset + e.count) { m.params[i] += 0.1 * Float(i % 5) - 0.2 } }
        let n = 6, size = net.2.count
        var (x, y) = syntheticBatch(count: n, c: 1, h: 1, w: size, classes: 3, seed: 4)
        for j in 0..<size { x[2 * size + j] *= 8 }   // one example with a larger gradient
        var singles: [[Float]] = []
        for i in 0..<n {
            _ = x.withUnsafeBufferPointer { xs in y.withUnsafeBufferPointer { ys in
                m.forwardBackward(xs.baseAddress! + i * size, labels: ys.baseAddress! + i, n: 1)
            } }
            singles.append(m.withGradients { Array($0) })
        }
        let reference = singles.map { g in g.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot() }
        let c = reference.sorted()[n / 2]   // about half the examples are clipped
        var norms = [Float](repeating: 0, count: n)
        _ = x.withUnsafeBufferPointer { xs in y.withUnsafeBufferPointer { ys in
            m.clippedGradientSum(xs.baseAddress!, labels: ys.baseAddress!, n: n, maxGradNorm: Float(c), norms: &norms)
        } }
        for i in 0..<n {
            #expect(abs(Double(norms[i]) - reference[i]) <= 1e-4 * reference[i] + 1e-6,
                    "\(net.0) example \(i): norm \(norms[i]) vs one-example pass \(reference[i])")
        }
        var expected = [Double](repeating: 0, count: m.parameterCount)
        for (g, r) in zip(singles, reference) {
            let f = r > c ? c / r : 1
            for k in g.indices { expected[k] += f * Double(g[k]) }
        }
        let ours = m.withGradients { Array($0) }
        let scale = expected.map(abs).max() ?? 0
        let diff = zip(ours, expected).map { abs(Double($0) - $1) }.max() ?? .infinity
        #expect(diff <= 1e-4 * scale, "\(net.0): clipped sum differs by \(diff) (largest entry \(scale))")
    }

    /// Steps of σ = 0 on two batches that differ in one example, whose gradient is huge in one:
    /// the models differ by at most 2·C·lr/(q·n) (each example's clipped gradient is at most C,
    /// divided by the expected batch size), and would differ by more without clipping.
    @Test func clippingBoundsOneExamplesInfluence() throws {
        let n = 8, size = 7
        let (x, y) = syntheticBatch(count: n, c: 1, h: 1, w: size, classes: 3, seed: 5)
        var other = x
        for j in 0..<size { other[j] = 500 * Float(j % 3) - 400 }   // example 0 replaced by an outlier
        let sgd = SGDConfig(learningRate: 0.1, momentum: 0)
        func run(_ images: [Float], clip: Double) throws -> ([Float], Int) {
            let m = try Network(spec: Zoo.mlp(hidden: [6], classes: 3), input: .vector(size), classes: 3, seed: 9, threads: 1)
            var clipped = 0
            _ = try images.withUnsafeBufferPointer { xs in try y.withUnsafeBufferPointer { ys in
                try trainDPSGD(m, images: xs, labels: ys, steps: 1,
                               settings: DPSGDSettings(maxGradNorm: clip, noiseMultiplier: 0, samplingRate: 1),
                               sgd: sgd, random: SeededDPSGDRandom(seed: 1), progress: { clipped += $0.clipped })
            } }
            return (m.parameters(), clipped)
        }
        let c = 0.05
        let (a, _) = try run(x, clip: c), (b, clippedB) = try run(other, clip: c)
        let moved = zip(a, b).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }.squareRoot()
        let bound = 2 * c * Double(sgd.learningRate) / Double(n)
        #expect(clippedB >= 1)
        #expect(moved <= bound * 1.0001, "one example moved the model by \(moved) > 2·C·lr/B = \(bound)")
        let (ua, _) = try run(x, clip: 1e9), (ub, _) = try run(other, clip: 1e9)
        let unclipped = zip(ua, ub).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }.squareRoot()
        #expect(unclipped > 10 * bound, "the outlier should move an unclipped model far more (\(unclipped))")
    }

    /// With empty Poisson samples a step applies noise alone: Δθ = −lr·N(0, σ²C²)/(q·n); its
    /// measured standard deviation over every coordinate and step is σ·C·lr/(q·n) within 3%.
    @Test func noiseStandardDeviationIsSigmaCOverExpectedBatch() throws {
        let m = try Network(spec: Zoo.mlp(hidden: [40], classes: 10), input: .vector(20), classes: 10, seed: 2, threads: 1)
        let (x, y) = syntheticBatch(count: 16, c: 1, h: 1, w: 20, classes: 10, seed: 6)
        let settings = DPSGDSettings(maxGradNorm: 0.5, noiseMultiplier: 1.5, samplingRate: 0.25)
        var deltas: [Double] = []
        let random = SeededDPSGDRandom(seed: 7, fixedSample: [])
        for _ in 0..<5 {
            let before = m.parameters()
            _ = try x.withUnsafeBufferPointer { xs in try y.withUnsafeBufferPointer { ys in
                try trainDPSGD(m, images: xs, labels: ys, steps: 1, settings: settings,
                               sgd: SGDConfig(learningRate: 1, momentum: 0), random: random)
            } }
            deltas += zip(m.parameters(), before).map { Double($0 - $1) }
        }
        let mean = deltas.reduce(0, +) / Double(deltas.count)
        let std = (deltas.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(deltas.count - 1)).squareRoot()
        let expected = 1.5 * 0.5 / (0.25 * 16)
        #expect(deltas.count > 4000)
        #expect(abs(std / expected - 1) < 0.03, "noise std \(std), expected σC/(qn) = \(expected)")
        #expect(abs(mean) < 3 * expected / Double(deltas.count).squareRoot(), "noise mean \(mean)")
    }

    /// A sample larger than the physical batch is processed in chunks with the same result.
    @Test func chunkedSampleEqualsOneBatch() throws {
        let (x, y) = syntheticBatch(count: 11, c: 1, h: 8, w: 8, classes: 3, seed: 8)
        func run(_ physical: Int) throws -> [Float] {
            let m = try Network(spec: try spec(Self.networks[1].1), input: .image(channels: 1, height: 8, width: 8),
                                classes: 3, seed: 4, threads: 2)
            _ = try x.withUnsafeBufferPointer { xs in try y.withUnsafeBufferPointer { ys in
                try trainDPSGD(m, images: xs, labels: ys, steps: 2,
                               settings: DPSGDSettings(maxGradNorm: 0.3, noiseMultiplier: 0, samplingRate: 0.5, physicalBatch: physical),
                               sgd: SGDConfig(learningRate: 0.1), random: SeededDPSGDRandom(seed: 3))
            } }
            return m.parameters()
        }
        let whole = try run(64), chunked = try run(3)
        let diff = zip(whole, chunked).map { abs($0 - $1) }.max() ?? 1
        #expect(diff < 1e-5, "chunks of 3 differ from one batch by \(diff)")
    }

    @Test func rejectsSettingsOutOfRange() throws {
        let m = try Network(spec: Zoo.mlp(hidden: [4], classes: 3), input: .vector(5), classes: 3, seed: 1, threads: 1)
        let (x, y) = syntheticBatch(count: 4, c: 1, h: 1, w: 5, classes: 3, seed: 1)
        for bad in [DPSGDSettings(maxGradNorm: 0, noiseMultiplier: 1, samplingRate: 0.1),
                    DPSGDSettings(maxGradNorm: 1, noiseMultiplier: -1, samplingRate: 0.1),
                    DPSGDSettings(maxGradNorm: 1, noiseMultiplier: .nan, samplingRate: 0.1),
                    DPSGDSettings(maxGradNorm: 1, noiseMultiplier: 1, samplingRate: 0),
                    DPSGDSettings(maxGradNorm: 1, noiseMultiplier: 1, samplingRate: 1.5),
                    DPSGDSettings(maxGradNorm: 1, noiseMultiplier: 1, samplingRate: 0.1, physicalBatch: 0)] {
            #expect(throws: CNNError.self) {
                try x.withUnsafeBufferPointer { xs in try y.withUnsafeBufferPointer { ys in
                    try trainDPSGD(m, images: xs, labels: ys, steps: 1, settings: bad, sgd: SGDConfig(),
                                   random: SeededDPSGDRandom(seed: 1))
                } }
            }
        }
    }

    /// The optimiser lives apart from the model: a run split into calls that share one
    /// `SGDOptimizer` equals the run in one call bit for bit (its momentum carries over); a fresh
    /// optimiser per call restarts the momentum and lands elsewhere; an optimiser sized for
    /// another model is refused.
    @Test func sharedOptimizerCarriesMomentumAcrossCalls() throws {
        let (x, y) = syntheticBatch(count: 8, c: 1, h: 1, w: 7, classes: 3, seed: 2)
        let settings = DPSGDSettings(maxGradNorm: 0.5, noiseMultiplier: 0, samplingRate: 1)
        let sgd = SGDConfig(learningRate: 0.1, momentum: 0.9)
        func model() throws -> Network {
            try Network(spec: Zoo.mlp(hidden: [6], classes: 3), input: .vector(7), classes: 3, seed: 5, threads: 1)
        }
        func run(_ m: Network, steps: Int, optimizer: SGDOptimizer?) throws {
            _ = try x.withUnsafeBufferPointer { xs in try y.withUnsafeBufferPointer { ys in
                try trainDPSGD(m, images: xs, labels: ys, steps: steps, settings: settings, sgd: sgd,
                               random: SeededDPSGDRandom(seed: 1), optimizer: optimizer)
            } }
        }
        let whole = try model()
        try run(whole, steps: 2, optimizer: nil)
        let split = try model(), shared = SGDOptimizer(parameterCount: split.parameterCount)
        try run(split, steps: 1, optimizer: shared)
        try run(split, steps: 1, optimizer: shared)
        let fresh = try model()
        try run(fresh, steps: 1, optimizer: nil)
        try run(fresh, steps: 1, optimizer: nil)
        #expect(split.parameters() == whole.parameters())
        #expect(fresh.parameters() != whole.parameters())
        #expect(throws: CNNError.parameterCountMismatch(expected: 69, got: 3)) {
            try run(try model(), steps: 1, optimizer: SGDOptimizer(parameterCount: 3))
        }
    }
}
