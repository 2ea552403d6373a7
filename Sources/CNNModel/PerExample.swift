// DP-SGD's per-example clipping in the engine: Σᵢ min(1, C/‖gᵢ‖)·gᵢ for a batch, gᵢ the gradient
// of example i's own loss with respect to every parameter, without storing any gᵢ.
//
// Method ("ghost clipping" with book-keeping: Lee & Kifer 2021, Li et al. 2022, Bu et al. 2022),
// one backward pass and one set of weight-gradient GEMMs per batch:
//   1. forward; dZ = ∂ℓᵢ/∂z per example (the mean loss's gradient times n);
//   2. backward of dZ computing input gradients only (no batched parameter gradients): every
//      parameterised op reduces its examples' weight gradients to squared norms as soon as its
//      dY is final (Tensor/PerExampleNorms.swift: per-example GEMMs or Gram matrices for
//      convolutions, whichever is cheaper; ‖xᵢ‖²‖dYᵢ‖² for linear layers; direct sums for
//      GroupNorm), and its dY is copied aside ("kept");
//   3. with cᵢ = min(1, C/‖gᵢ‖): every op's backward is linear in dY given the forward's
//      activations, and example i's dY at every layer is its own dZᵢ pushed back, so the dY of
//      the clipped batch is the kept dY with example i scaled by cᵢ; each parameterised op's
//      ordinary batched weight-gradient GEMM over it gives Σᵢ cᵢ·gᵢ directly.
// Against running a second backward of the scaled dZ (what this engine did first) it saves the
// input-gradient half of that pass and the norm pass's batched weight gradients, at the memory of
// one output gradient per parameterised op (`keptBytes`: 47.3 MB for the reference CNN at batch
// 256 on 28×28 inputs, against 191.6 MB of plain workspace). Why not materialise gᵢ (Opacus'
// hooks): B copies of the model (390k floats × 256 = 400 MB for cnn4 at batch 256) and a pass
// over them.
import Tensor

/// Per-example buffers of one network for batches of up to `capacity`.
final class PerExampleWorkspace {
    let capacity: Int
    let squaredNorms: Scratch<Double>
    let scales: Scratch<Float>
    /// Per op index: the kept output gradient of a parameterised op (nil for the others).
    let kept: [Scratch<Float>?]
    let scratch: PerExampleScratch

    init(capacity: Int, ops: [Op], threads: Int) throws {
        self.capacity = capacity
        squaredNorms = Scratch(capacity)
        scales = Scratch(capacity)
        kept = ops.map { $0.hasParameters ? Scratch(capacity * $0.outShape.count) : nil }
        let col = ops.map { $0.perExampleScratchFloats.col }.max() ?? 0
        let weight = ops.map { $0.perExampleScratchFloats.weight }.max() ?? 0
        scratch = try PerExampleScratch(threads: threads, colFloats: col, weightFloats: weight)
    }

    /// Bytes of the kept output gradients.
    var keptBytes: Int { kept.reduce(0) { $0 + ($1?.count ?? 0) } * 4 }
    var bytes: Int { squaredNorms.count * 8 + scales.count * 4 + keptBytes + scratch.bytes }
}

extension Network {
    func perExampleWorkspace(for batch: Int) -> PerExampleWorkspace? {
        if let pe = perExample, pe.capacity >= batch, pe.scratch.threads >= threads { return pe }
        perExample = try? PerExampleWorkspace(capacity: max(1, batch), ops: compiled.ops, threads: threads)
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
        d?.mark(.forward)
        let sq = pe.squaredNorms.pointer
        sq.update(repeating: 0, count: n)
        var p = pass(ws, n: n, training: true)
        p.norms = sq; p.perExample = pe.scratch; p.parameterGradients = false
        backwardOps(p, ws: ws, keep: pe)
        d?.mark(.normBackward)
        let scales = pe.scales.pointer
        for i in 0..<n {
            let norm = sq[i].squareRoot()
            norms?[i] = Float(norm)
            scales[i] = norm > Double(maxGradNorm) ? Float(Double(maxGradNorm) / norm) : 1
        }
        let q = pass(ws, n: n, training: true)
        for (k, op) in compiled.ops.enumerated() {
            guard let kept = pe.kept[k] else { continue }
            scaleExamples(kept.pointer, op.layout(op.output, op.outShape, n), scales: scales, threads: threads)
            op.parameterGradients(q, outGrad: kept.pointer)
        }
        d?.mark(.clippedGradient)
        return ce.loss
    }
}
