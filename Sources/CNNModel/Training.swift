// The training loop and evaluation, over any Model (forward/backward, the optimiser, the proximal
// term; loss and accuracy from the logits), and a Network's inference entry point.
import Tensor

/// Largest batch a forward-only pass uses: results do not depend on it, and it bounds the
/// workspace (~50 MB for cnn4 on 3x32x32 at 64 images) since `flwr simulate` holds many models.
let maxInferenceBatch = 64

extension Model {
    /// Checks that `images` holds exactly `count` examples and every label is in 0..<classes.
    func validate(images: UnsafeBufferPointer<Float>, count: Int, labels: UnsafeBufferPointer<Int32>?) throws {
        let expected = count * inputShape.count
        guard images.count == expected, images.baseAddress != nil || expected == 0 else {
            throw CNNError.imageCountMismatch(expectedFloats: expected, gotFloats: images.count)
        }
        if let labels {
            for (i, y) in labels.enumerated() where y < 0 || Int(y) >= classes {
                throw CNNError.labelOutOfRange(index: i, label: y, classes: classes)
            }
        }
    }

    /// The training loop, over any Model: `epochs` passes over the data in batches of
    /// `batchSize` (the last partial batch included), shuffling with a generator seeded by `seed`
    /// each epoch (dropout masks from generators derived from it: `beginTraining`). A fresh
    /// `SGDOptimizer` serves each call (momentum zero, the proximal term anchored here), like a
    /// fresh torch optimizer per fit. `adjustGradients(grads, params)` runs between backward (and the
    /// proximal term) and the optimiser's step; `progress` after every step.
    public func train(images: UnsafeBufferPointer<Float>, labels: UnsafeBufferPointer<Int32>, epochs: Int,
                      batchSize: Int, sgd: SGDConfig, seed: UInt64,
                      adjustGradients: ((UnsafeMutableBufferPointer<Float>, UnsafeBufferPointer<Float>) -> Void)?,
                      progress: ((TrainProgress) -> Void)?) throws -> TrainResult {
        guard epochs >= 0 else { throw CNNError.invalidArgument(name: "epochs", value: epochs) }
        guard batchSize > 0 else { throw CNNError.invalidArgument(name: "batchSize", value: batchSize) }
        for (name, v) in [("learningRate", sgd.learningRate), ("momentum", sgd.momentum),
                          ("weightDecay", sgd.weightDecay), ("proximalMu", sgd.proximalMu)] where !(v.isFinite && v >= 0) {
            throw CNNError.invalidHyperparameter(name: name, value: v)
        }
        let count = labels.count
        try validate(images: images, count: count, labels: labels)
        guard count > 0, epochs > 0, let src = images.baseAddress, let labelBase = labels.baseAddress else {
            return TrainResult(meanLoss: 0, examples: 0)
        }
        let batch = min(batchSize, count)
        reserve(batch: batch)
        let optimizer = SGDOptimizer(parameterCount: parameterCount)
        optimizer.begin(sgd, model: self)
        let timings = (self as? Network)?.timings   // benchmarks only: the update's share of a step
        beginTraining(seed: seed)
        let imageSize = inputShape.count
        var batchImages = [Float](repeating: 0, count: batch * imageSize)
        var batchLabels = [Int32](repeating: 0, count: batch)
        let adjusts = sgd.proximalMu > 0 || adjustGradients != nil
        var order = Array(0..<count)
        var rng = SplitMix64(seed: seed)
        let steps = (count + batch - 1) / batch
        var lossSum = 0.0, seen = 0
        for epoch in 0..<epochs {
            order.shuffle(using: &rng)
            for step in 0..<steps {
                let lo = step * batch, n = min(batch, count - lo)
                let loss = batchImages.withUnsafeMutableBufferPointer { xb in
                    batchLabels.withUnsafeMutableBufferPointer { yb in
                        let x = xb.baseAddress!, y = yb.baseAddress!
                        for j in 0..<n {
                            let k = order[lo + j]
                            (x + j * imageSize).update(from: src + k * imageSize, count: imageSize)
                            y[j] = labelBase[k]
                        }
                        return forwardBackward(x, labels: y, n: n)
                    }
                }
                if adjusts {
                    withBuffers { p, g in
                        if let gp = g.baseAddress, let pp = p.baseAddress {
                            optimizer.addProximalTerm(sgd, grads: gp, params: pp)
                        }
                        adjustGradients?(g, UnsafeBufferPointer(p))
                    }
                }
                optimizer.step(sgd, model: self)
                timings?.markUpdate()
                lossSum += loss * Double(n); seen += n
                progress?(TrainProgress(epoch: epoch, step: step, stepsPerEpoch: steps, examplesSeen: seen, loss: loss))
            }
        }
        return TrainResult(meanLoss: lossSum / Double(seen), examples: seen)
    }

    /// Mean loss and accuracy over the data from the logits, in batches of at most `batchSize`
    /// (and `maxInferenceBatch`) examples: results do not depend on it; it only bounds the
    /// workspace.
    public func evaluate(images: UnsafeBufferPointer<Float>, labels: UnsafeBufferPointer<Int32>,
                         batchSize: Int) throws -> EvalResult {
        guard batchSize > 0 else { throw CNNError.invalidArgument(name: "batchSize", value: batchSize) }
        let count = labels.count
        try validate(images: images, count: count, labels: labels)
        guard count > 0, let src = images.baseAddress, let labelBase = labels.baseAddress else {
            return EvalResult(loss: 0, accuracy: 0, examples: 0)
        }
        let batch = min(batchSize, count, maxInferenceBatch)
        let imageSize = inputShape.count
        var lossSum = 0.0, correct = 0
        var lo = 0
        while lo < count {
            let n = min(batch, count - lo)
            let z = try logits(images: UnsafeBufferPointer(start: src + lo * imageSize, count: n * imageSize), count: n)
            let ce = z.withUnsafeBufferPointer { zb in
                softmaxCrossEntropy(zb.baseAddress!, labels: labelBase + lo, batch: n, classes: classes, logitsGrad: nil)
            }
            lossSum += ce.loss * Double(n); correct += ce.correct
            lo += n
        }
        return EvalResult(loss: lossSum / Double(count), accuracy: Double(correct) / Double(count), examples: count)
    }
}

extension Network {
    /// Reseeds every op's per-call training state (dropout masks) from `seed`.
    public func beginTraining(seed: UInt64) {
        for op in compiled.ops { op.beginTraining(seed: seed) }
    }

    /// Logits ([count, classes] row-major) of `count` examples, in internal batches of up to `maxInferenceBatch`.
    public func logits(images: UnsafeBufferPointer<Float>, count: Int) throws -> [Float] {
        guard count >= 0 else { throw CNNError.invalidArgument(name: "count", value: count) }
        try validate(images: images, count: count, labels: nil)
        guard count > 0, let src = images.baseAddress else { return [] }
        let batch = min(maxInferenceBatch, count)
        let ws = workspace(for: batch)
        let imageSize = inputShape.count
        var out = [Float](repeating: 0, count: count * classes)
        out.withUnsafeMutableBufferPointer { dst in
            guard let base = dst.baseAddress else { return }
            var lo = 0
            while lo < count {
                let n = min(batch, count - lo)
                let z = forward(src + lo * imageSize, n: n, training: false, ws: ws)
                (base + lo * classes).update(from: z, count: n * classes)
                lo += n
            }
        }
        return out
    }
}

/// The reference CNN (zoo "cnn4") for C×H×W inputs: 390,410 parameters for 1×28×28 and 10
/// classes, 398,666 for 3×32×32.
public func referenceCNN(channels: Int, height: Int, width: Int, classes: Int, seed: UInt64, threads: Int = 2) throws -> Network {
    try Network(spec: Zoo.cnn4(classes: classes), input: .image(channels: channels, height: height, width: width),
                classes: classes, seed: seed, threads: threads)
}
