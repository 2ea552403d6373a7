// The DP-SGD training loop (Abadi et al. 2016, "Deep Learning with Differential Privacy"), over
// any Model's clipped gradient sum (PerExample.swift). One step:
//   1. Poisson sampling: every example joins the batch independently with probability q, so the
//      batch size varies (possibly 0); this is the sampling the RDP accountant of the Privacy
//      module (and Opacus's) assumes, steps per epoch ⌈1/q⌉;
//   2. the batch, in physical chunks of at most `physicalBatch` examples (memory is bounded by the
//      chunk, whatever the sample's size), gives Σᵢ min(1, C/‖gᵢ‖)·gᵢ;
//   3. N(0, σ²C²) is added to every coordinate of the sum, which is then divided by the
//      *expected* batch size q·n (not the drawn one, which would leak through the scale);
//   4. one SGD step (momentum and weight decay act on the released noisy gradient:
//      post-processing).
// Where the randomness comes from is the caller's (`DPSGDRandomSource`): the Privacy module's
// kernel CSPRNG in every run, a seeded generator in tests only.

/// The random draws of DP-SGD: the Poisson sample and the Gaussian noise.
public protocol DPSGDRandomSource: AnyObject {
    /// Indices in 0..<count, each included independently with probability `rate`, ascending.
    func poissonSample(count: Int, rate: Double) -> [Int]
    /// Adds an independent N(0, std²) draw to every element.
    func addGaussianNoise(_ values: UnsafeMutableBufferPointer<Float>, std: Double)
}

/// The mechanism's parameters of DP-SGD steps.
public struct DPSGDSettings: Sendable, Equatable {
    /// Clip norm C: every example's gradient (flat L2 over all parameters) is scaled to at most C.
    public var maxGradNorm: Double
    /// Noise multiplier σ: the noise std per coordinate is σ·C.
    public var noiseMultiplier: Double
    /// Poisson sampling rate q (expected batch size q·n).
    public var samplingRate: Double
    /// Largest chunk one forward/backward processes (bounds memory, not the privacy).
    public var physicalBatch: Int

    /// Settings with C, σ, q and a physical chunk of at most `physicalBatch` examples.
    public init(maxGradNorm: Double, noiseMultiplier: Double, samplingRate: Double, physicalBatch: Int = 256) {
        self.maxGradNorm = maxGradNorm; self.noiseMultiplier = noiseMultiplier
        self.samplingRate = samplingRate; self.physicalBatch = physicalBatch
    }

    /// Steps in one epoch at this sampling rate: ⌈1/q⌉.
    public var stepsPerEpoch: Int { Int((1 / samplingRate).rounded(.up)) }

    /// Throws naming the first setting out of range.
    public func validate() throws(CNNError) {
        guard maxGradNorm.isFinite, maxGradNorm > 0 else {
            throw .invalidDPSGDSetting(name: "max grad norm", value: maxGradNorm, expected: "finite and > 0")
        }
        guard noiseMultiplier.isFinite, noiseMultiplier >= 0 else {
            throw .invalidDPSGDSetting(name: "noise multiplier", value: noiseMultiplier, expected: "finite and >= 0")
        }
        guard samplingRate.isFinite, samplingRate > 0, samplingRate <= 1 else {
            throw .invalidDPSGDSetting(name: "sampling rate", value: samplingRate, expected: "in (0, 1]")
        }
        guard physicalBatch >= 1, physicalBatch <= 1 << 20 else {
            throw .invalidDPSGDSetting(name: "physical batch", value: Double(physicalBatch), expected: "in 1...1048576")
        }
    }
}

/// Reported after every DP-SGD step.
public struct DPSGDProgress: Sendable, Equatable {
    /// Step index within this call, from 0.
    public var step: Int
    /// Examples the step's Poisson sample drew.
    public var batchSize: Int
    /// The sample's mean loss (0 for an empty sample).
    public var loss: Double
    /// How many of the sample's examples had ‖gᵢ‖ > C (and were scaled down).
    public var clipped: Int
}

/// Outcome of `trainDPSGD`.
public struct DPSGDResult: Sendable, Equatable {
    /// Steps taken.
    public var steps: Int
    /// Examples drawn over all steps.
    public var examples: Int
    /// Mean training loss over every drawn example.
    public var meanLoss: Double
    /// Fraction of drawn examples whose gradient was clipped.
    public var clippedFraction: Double
}

/// Runs `steps` DP-SGD steps of `model` on `count` examples (NCHW `images`, `labels`), updated by
/// `optimizer` (nil: a fresh one, momentum zero; pass the same one to every call of a run split
/// into epochs to keep its momentum); `adjustGradients(grads, params)` runs after the noise, before
/// each SGD step (e.g. FedProx's proximal term, which depends on no example); `progress` after
/// every step. `phaseTimes` (benchmarks only) receives where each step's time goes; it is
/// attached to a `Network` model for the call.
public func trainDPSGD(_ model: any Model, images: UnsafeBufferPointer<Float>, labels: UnsafeBufferPointer<Int32>,
                       steps: Int, settings: DPSGDSettings, sgd: SGDConfig, random: any DPSGDRandomSource,
                       adjustGradients: ((UnsafeMutableBufferPointer<Float>, UnsafeBufferPointer<Float>) -> Void)? = nil,
                       progress: ((DPSGDProgress) -> Void)? = nil, optimizer: SGDOptimizer? = nil,
                       phaseTimes: DPSGDPhaseTimes? = nil) throws -> DPSGDResult {
    try settings.validate()
    guard steps >= 0 else { throw CNNError.invalidArgument(name: "steps", value: steps) }
    for (name, v) in [("learningRate", sgd.learningRate), ("momentum", sgd.momentum),
                      ("weightDecay", sgd.weightDecay)] where !(v.isFinite && v >= 0) {
        throw CNNError.invalidHyperparameter(name: name, value: v)
    }
    let count = labels.count, imageSize = model.inputShape.count
    guard images.count == count * imageSize else {
        throw CNNError.imageCountMismatch(expectedFloats: count * imageSize, gotFloats: images.count)
    }
    for (i, y) in labels.enumerated() where y < 0 || Int(y) >= model.classes {
        throw CNNError.labelOutOfRange(index: i, label: y, classes: model.classes)
    }
    guard count > 0, steps > 0, let src = images.baseAddress, let labelBase = labels.baseAddress else {
        return DPSGDResult(steps: 0, examples: 0, meanLoss: 0, clippedFraction: 0)
    }
    let chunk = min(settings.physicalBatch, count), parameters = model.parameterCount
    let optimizer = optimizer ?? SGDOptimizer(parameterCount: parameters)
    guard optimizer.parameterCount == parameters else {
        throw CNNError.parameterCountMismatch(expected: parameters, got: optimizer.parameterCount)
    }
    model.reserve(batch: chunk)
    var batchImages = [Float](repeating: 0, count: chunk * imageSize)
    var batchLabels = [Int32](repeating: 0, count: chunk)
    var norms = [Float](repeating: 0, count: chunk)
    var sum = [Float](repeating: 0, count: parameters)
    let expected = settings.samplingRate * Double(count)
    let c = Float(settings.maxGradNorm), std = settings.noiseMultiplier * settings.maxGradNorm
    var lossSum = 0.0, drawn = 0, clippedTotal = 0
    let clock = phaseTimes, network = clock == nil ? nil : model as? Network
    network?.dpTimes = clock
    defer { network?.dpTimes = nil }
    for step in 0..<steps {
        clock?.start()
        let sample = random.poissonSample(count: count, rate: settings.samplingRate)
        sum.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
        var stepLoss = 0.0, stepClipped = 0
        var lo = 0
        while lo < sample.count {
            let n = min(chunk, sample.count - lo)
            batchImages.withUnsafeMutableBufferPointer { dst in
                guard let d = dst.baseAddress else { return }
                for j in 0..<n {
                    (d + j * imageSize).update(from: src + sample[lo + j] * imageSize, count: imageSize)
                    batchLabels[j] = labelBase[sample[lo + j]]
                }
            }
            clock?.mark(.sample)
            let loss = batchImages.withUnsafeBufferPointer { x in
                batchLabels.withUnsafeBufferPointer { y in
                    norms.withUnsafeMutableBufferPointer { nb in
                        model.clippedGradientSum(x.baseAddress!, labels: y.baseAddress!, n: n, maxGradNorm: c,
                                                 norms: nb.baseAddress)
                    }
                }
            }
            sum.withUnsafeMutableBufferPointer { s in
                model.withGradients { g in for k in 0..<parameters { s[k] += g[k] } }
            }
            clock?.mark(.accumulate)
            stepLoss += loss * Double(n)
            for j in 0..<n where norms[j] > c { stepClipped += 1 }
            lo += n
        }
        sum.withUnsafeMutableBufferPointer { s in
            clock?.start()
            random.addGaussianNoise(s, std: std)
            clock?.mark(.noise)
            let inv = Float(1 / expected)
            model.withGradients { g in for k in 0..<parameters { g[k] = s[k] * inv } }
        }
        if let adjustGradients {
            model.withBuffers { p, g in adjustGradients(g, UnsafeBufferPointer(p)) }
        }
        optimizer.step(sgd, model: model)
        clock?.mark(.sgd)
        clock?.steps += 1
        lossSum += stepLoss; drawn += sample.count; clippedTotal += stepClipped
        progress?(DPSGDProgress(step: step, batchSize: sample.count, loss: sample.isEmpty ? 0 : stepLoss / Double(sample.count),
                                clipped: stepClipped))
    }
    return DPSGDResult(steps: steps, examples: drawn, meanLoss: drawn > 0 ? lossSum / Double(drawn) : 0,
                       clippedFraction: drawn > 0 ? Double(clippedTotal) / Double(drawn) : 0)
}
