// Softmax cross-entropy, mean over the batch (PyTorch's nn.CrossEntropyLoss, reduction "mean").
//   logits z: [B, K] row-major   labels: B values in 0..<K
//   loss = (1/B) Σ_i [ logsumexp(z_i) - z_i[label_i] ]
//   dz_i = (softmax(z_i) - onehot(label_i)) / B

#if canImport(Glibc)
import Glibc
#endif

/// Loss and accuracy of one batch.
public struct CrossEntropyResult: Equatable, Sendable {
    /// Mean loss over the batch.
    public var loss: Double
    /// Rows whose arg-max logit equals the label (first maximum wins).
    public var correct: Int
}

/// Mean cross-entropy of `logits` against `labels`; writes dL/dlogits into `logitsGrad` if
/// given. Labels must be in 0..<classes (callers validate them once per dataset).
public func softmaxCrossEntropy(_ logits: UnsafePointer<Float>, labels: UnsafePointer<Int32>, batch: Int,
                                classes: Int, logitsGrad: UnsafeMutablePointer<Float>?) -> CrossEntropyResult {
    var total = 0.0, correct = 0
    let invB = Float(1) / Float(max(batch, 1))
    for i in 0..<batch {
        let z = logits + i * classes, label = Int(labels[i])
        var maxV = z[0], arg = 0
        for j in 1..<max(classes, 1) where z[j] > maxV { maxV = z[j]; arg = j }
        if arg == label { correct += 1 }
        var sum: Float = 0
        for j in 0..<classes { sum += expf(z[j] - maxV) }
        total += Double(logf(sum) + maxV - z[label])
        if let g = logitsGrad {
            let gi = g + i * classes, inv = 1 / sum
            for j in 0..<classes { gi[j] = expf(z[j] - maxV) * inv * invB }
            gi[label] -= invB
        }
    }
    return CrossEntropyResult(loss: total / Double(max(batch, 1)), correct: correct)
}

/// Scalar reference in Double: same results, computed without the max shift's Float rounding.
public func softmaxCrossEntropyReference(_ logits: UnsafePointer<Float>, labels: UnsafePointer<Int32>, batch: Int,
                                         classes: Int, logitsGrad: UnsafeMutablePointer<Float>?) -> CrossEntropyResult {
    var total = 0.0, correct = 0
    for i in 0..<batch {
        let z = (0..<classes).map { Double(logits[i * classes + $0]) }
        let label = Int(labels[i])
        let m = z.max() ?? 0
        let sum = z.reduce(0) { $0 + exp($1 - m) }
        total += log(sum) + m - z[label]
        if z.firstIndex(of: m) == label { correct += 1 }
        if let g = logitsGrad {
            for j in 0..<classes {
                g[i * classes + j] = Float((exp(z[j] - m) / sum - (j == label ? 1 : 0)) / Double(batch))
            }
        }
    }
    return CrossEntropyResult(loss: total / Double(batch), correct: correct)
}
