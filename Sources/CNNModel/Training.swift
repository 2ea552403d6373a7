// Training, evaluation and inference entry points of the CNN.
import Tensor

/// Largest batch a forward-only pass uses: results do not depend on it, and it bounds the
/// workspace (~50 MB for 3x32x32 at 64 images) since `flwr simulate` holds many models.
let maxInferenceBatch = 64

extension CNN {
    /// Checks that `images` holds exactly `count` NCHW images and every label is in 0..<classes.
    func validate(images: UnsafeBufferPointer<Float>, count: Int, labels: UnsafeBufferPointer<Int32>?) throws {
        let expected = count * channels * height * width
        guard images.count == expected, images.baseAddress != nil || expected == 0 else {
            throw CNNError.imageCountMismatch(expectedFloats: expected, gotFloats: images.count)
        }
        if let labels {
            for (i, y) in labels.enumerated() where y < 0 || Int(y) >= classes {
                throw CNNError.labelOutOfRange(index: i, label: y, classes: classes)
            }
        }
    }

    /// Trains for `epochs` passes over the data in batches of `batchSize` (the last partial batch
    /// included), shuffling with a generator seeded by `seed` each epoch. The momentum buffer
    /// starts at zero on every call, like a fresh torch optimizer per fit. Calls `progress`
    /// after every step. Images: N×C×H×W NCHW floats; labels: N values in 0..<classes.
    public func train(images: UnsafeBufferPointer<Float>, labels: UnsafeBufferPointer<Int32>, epochs: Int,
                      batchSize: Int, sgd: SGDConfig, seed: UInt64,
                      progress: ((TrainProgress) -> Void)? = nil) throws -> TrainResult {
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
        let ws = workspace(for: batch)
        velocity.update(repeating: 0, count: parameterCount)
        // FedProx: the parameters the round started from anchor the proximal term.
        let anchor: [Float]? = sgd.proximalMu > 0 ? Array(UnsafeBufferPointer(start: params, count: parameterCount)) : nil
        let imageSize = channels * height * width
        var order = Array(0..<count)
        var rng = SplitMix64(seed: seed)
        let steps = (count + batch - 1) / batch
        var lossSum = 0.0, seen = 0
        for epoch in 0..<epochs {
            order.shuffle(using: &rng)
            for step in 0..<steps {
                let lo = step * batch, n = min(batch, count - lo)
                order.withUnsafeBufferPointer { idx in
                    for j in 0..<n {
                        let k = idx[lo + j]
                        (ws.batchImages.pointer + j * imageSize).update(from: src + k * imageSize, count: imageSize)
                        ws.batchLabels.pointer[j] = labelBase[k]
                    }
                }
                let loss = anchor.withOptionalBuffer { a in
                    trainStep(ws.batchImages.pointer, labels: ws.batchLabels.pointer, n: n, sgd: sgd, ws: ws, anchor: a)
                }
                lossSum += loss * Double(n); seen += n
                progress?(TrainProgress(epoch: epoch, step: step, stepsPerEpoch: steps, examplesSeen: seen, loss: loss))
            }
        }
        return TrainResult(meanLoss: lossSum / Double(seen), examples: seen)
    }

    /// One forward + backward + SGD update on n images already in the workspace; returns the loss.
    func trainStep(_ images: UnsafePointer<Float>, labels: UnsafePointer<Int32>, n: Int, sgd: SGDConfig,
                   ws: Workspace, anchor: UnsafePointer<Float>? = nil) -> Double {
        forward(images, n: n, ws: ws)
        let ce = backward(images, labels: labels, n: n, ws: ws)
        if let anchor, sgd.proximalMu > 0 {
            addProximalGradient(grads, params: params, anchor: anchor, count: parameterCount, mu: sgd.proximalMu)
        }
        sgdStep(params, grads: grads, velocity: velocity, count: parameterCount, learningRate: sgd.learningRate,
                momentum: sgd.momentum, weightDecay: sgd.weightDecay)
        timings?.mark(4 * blocks.count + 1)
        return ce.loss
    }

    /// Mean loss and accuracy over the data, in batches of at most `batchSize` images (results
    /// do not depend on it; it only bounds the workspace).
    public func evaluate(images: UnsafeBufferPointer<Float>, labels: UnsafeBufferPointer<Int32>,
                         batchSize: Int = 256) throws -> EvalResult {
        guard batchSize > 0 else { throw CNNError.invalidArgument(name: "batchSize", value: batchSize) }
        let count = labels.count
        try validate(images: images, count: count, labels: labels)
        guard count > 0, let src = images.baseAddress, let labelBase = labels.baseAddress else {
            return EvalResult(loss: 0, accuracy: 0, examples: 0)
        }
        let batch = min(batchSize, count, maxInferenceBatch)
        let ws = workspace(for: batch)
        let imageSize = channels * height * width
        var lossSum = 0.0, correct = 0
        var lo = 0
        while lo < count {
            let n = min(batch, count - lo)
            forward(src + lo * imageSize, n: n, ws: ws)
            let ce = softmaxCrossEntropy(ws.logits.pointer, labels: labelBase + lo, batch: n, classes: classes,
                                         logitsGrad: nil)
            lossSum += ce.loss * Double(n); correct += ce.correct
            lo += n
        }
        return EvalResult(loss: lossSum / Double(count), accuracy: Double(correct) / Double(count), examples: count)
    }

    /// Logits ([count, classes] row-major) of `count` NCHW images, in internal batches of up to `maxInferenceBatch`.
    public func logits(images: UnsafeBufferPointer<Float>, count: Int) throws -> [Float] {
        guard count >= 0 else { throw CNNError.invalidArgument(name: "count", value: count) }
        try validate(images: images, count: count, labels: nil)
        guard count > 0, let src = images.baseAddress else { return [] }
        let batch = min(maxInferenceBatch, count)
        let ws = workspace(for: batch)
        let imageSize = channels * height * width
        var out = [Float](repeating: 0, count: count * classes)
        out.withUnsafeMutableBufferPointer { dst in
            guard let base = dst.baseAddress else { return }
            var lo = 0
            while lo < count {
                let n = min(batch, count - lo)
                forward(src + lo * imageSize, n: n, ws: ws)
                (base + lo * classes).update(from: ws.logits.pointer, count: n * classes)
                lo += n
            }
        }
        return out
    }
}

extension Optional where Wrapped == [Float] {
    /// Calls `body` with the array's base address, or nil when there is no array.
    func withOptionalBuffer<R>(_ body: (UnsafePointer<Float>?) -> R) -> R {
        switch self {
        case .some(let a): return a.withUnsafeBufferPointer { body($0.baseAddress) }
        case .none: return body(nil)
        }
    }
}
