// DP-SGD's per-example clipping in the engine: Σᵢ min(1, C/‖gᵢ‖)·gᵢ for a batch, gᵢ the gradient
// of example i's own loss with respect to every parameter, without storing any gᵢ.
//
// Method ("ghost clipping", Lee & Kifer 2021 / Li et al. 2022), two backward passes per batch:
//   1. forward; dZ = ∂ℓᵢ/∂z per example (the mean loss's gradient times n);
//   2. backward of dZ: every parameterised op reduces its examples' weight gradients to squared
//      norms as soon as its dY is final (Tensor/PerExampleNorms.swift: per-example GEMMs for
//      convolutions, ‖xᵢ‖²‖dYᵢ‖² for linear layers, direct sums for GroupNorm) and discards them;
//   3. backward of dZ with row i scaled by cᵢ = min(1, C/‖gᵢ‖): every op's backward is linear in
//      dY given the forward's activations, masks and statistics, so the ordinary batched weight-
//      gradient GEMMs now produce Σᵢ cᵢ·gᵢ directly.
// Why not materialise gᵢ (Opacus' hooks): B copies of the model (390k floats × 256 = 400 MB for
// cnn4 at batch 256) and a pass over them; here memory is the plain workspace plus one example's
// im2col matrix and weight gradient per thread and n·(classes + 2) numbers (`bytes`). Why not
// "book-keeping" (one backward, keeping every layer's dY for a second set of weight GEMMs): it
// saves the input-gradient half of pass 3 but must keep all dY alive, while the network reuses
// two gradient buffers for the whole chain; the second pass keeps the memory of a plain step.
import Tensor

/// Per-example buffers of one network for batches of up to `capacity`.
final class PerExampleWorkspace {
    let capacity: Int
    let squaredNorms: Scratch<Double>
    let logitsGrad: Scratch<Float>
    let scratch: PerExampleScratch

    init(capacity: Int, classes: Int, ops: [Op], threads: Int) throws {
        self.capacity = capacity
        squaredNorms = Scratch(capacity)
        logitsGrad = Scratch(capacity * classes)
        let col = ops.map { $0.perExampleScratchFloats.col }.max() ?? 0
        let weight = ops.map { $0.perExampleScratchFloats.weight }.max() ?? 0
        scratch = try PerExampleScratch(threads: threads, colFloats: col, weightFloats: weight)
    }

    var bytes: Int { squaredNorms.count * 8 + logitsGrad.count * 4 + scratch.bytes }
}

extension Network {
    func perExampleWorkspace(for batch: Int) -> PerExampleWorkspace? {
        if let pe = perExample, pe.capacity >= batch, pe.scratch.threads >= threads { return pe }
        perExample = try? PerExampleWorkspace(capacity: max(1, batch), classes: classes, ops: compiled.ops, threads: threads)
        return perExample
    }

    /// DP-SGD's clipped gradient sum of `n` examples into the gradient buffer (see the header);
    /// `norms` (n floats, optional) receives every ‖gᵢ‖. Returns the batch's mean loss.
    public func clippedGradientSum(_ images: UnsafePointer<Float>, labels: UnsafePointer<Int32>, n: Int,
                                   maxGradNorm: Float, norms: UnsafeMutablePointer<Float>?) -> Double {
        let ws = workspace(for: n)
        guard let pe = perExampleWorkspace(for: n) else {
            // Only a failed GEMM workspace allocation gets here: clip nothing, contribute nothing.
            grads.update(repeating: 0, count: parameterCount)
            return .nan
        }
        let d = dpTimes
        d?.start()
        _ = forward(images, n: n, training: true, ws: ws)
        let dz = ws.grad[compiled.logits], count = n * classes
        let ce = softmaxCrossEntropy(ws.act[compiled.logits], labels: labels, batch: n, classes: classes, logitsGrad: dz)
        let scale = Float(n)
        for j in 0..<count { dz[j] *= scale }
        pe.logitsGrad.pointer.update(from: dz, count: count)
        d?.mark(.forward)
        let sq = pe.squaredNorms.pointer
        sq.update(repeating: 0, count: n)
        var p = pass(ws, n: n, training: true)
        p.norms = sq; p.perExample = pe.scratch
        backwardOps(p, ws: ws)
        d?.mark(.normBackward)
        for i in 0..<n {
            let norm = sq[i].squareRoot()
            norms?[i] = Float(norm)
            let c = norm > Double(maxGradNorm) ? Float(Double(maxGradNorm) / norm) : 1
            let src = pe.logitsGrad.pointer + i * classes, dst = dz + i * classes
            for k in 0..<classes { dst[k] = src[k] * c }
        }
        backwardOps(pass(ws, n: n, training: true), ws: ws)
        d?.mark(.clippedGradient)
        return ce.loss
    }

    /// Zeroes the momentum buffer.
    public func resetMomentum() { velocity.update(repeating: 0, count: parameterCount) }
}
