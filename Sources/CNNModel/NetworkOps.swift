// The operations a Network runs: one per layer after compilation (NetworkCompile.swift), each a
// forward/backward pair over raw buffers of the workspace. Values between ops are CNHW images
// ([C, N*H*W], one GEMM per convolution over the batch) or [N, F] row-major vectors; only the
// network input (value 0) is NCHW. Backward writes (overwrites) the input gradients it is given;
// the network routes them (accumulating where a value has several consumers).
import Tensor

/// Raw pointers of one pass: per-value activations and gradients, per-op extra buffers.
struct Pass {
    let n: Int, training: Bool
    let act: UnsafeMutablePointer<UnsafeMutablePointer<Float>>
    let grad: UnsafeMutablePointer<UnsafeMutablePointer<Float>>
    let extra: UnsafeMutablePointer<UnsafeMutablePointer<Float>>
    let params: UnsafeMutablePointer<Float>, grads: UnsafeMutablePointer<Float>
    let col: UnsafeMutablePointer<Float>
    let threads: Int, gemm: GEMMWorkspace
    /// Set for DP-SGD's norm pass (PerExample.swift): each parameterised op adds its examples'
    /// squared weight-gradient norms here (n Doubles) after its backward.
    var norms: UnsafeMutablePointer<Double>? = nil
    /// Per-thread buffers of the per-example norm kernels (set with `norms`).
    var perExample: PerExampleScratch? = nil
    /// False in DP-SGD's norm pass: the ops compute input gradients only, no parameter gradients
    /// (those come afterwards from the kept, clipped output gradients: `parameterGradients`).
    var parameterGradients = true
}

/// Base class of the operations (overridden per layer family).
class Op {
    /// Layer path and kind, e.g. "conv1 conv2d+relu" (used by PhaseTimings).
    var name: String
    /// Input value indices (one; two for Add) and the output value index.
    var inputs: [Int], output: Int
    /// Per-example input and output shapes.
    let inShape: TensorShape, outShape: TensorShape
    /// Index in the network's op list (selects its extra buffer).
    var index = 0

    init(name: String, inputs: [Int], output: Int, inShape: TensorShape, outShape: TensorShape) {
        self.name = name; self.inputs = inputs; self.output = output; self.inShape = inShape; self.outShape = outShape
    }
    /// Called by `train` before its first step with the call's seed (e.g. dropout reseeds its
    /// masks from it); most ops hold no training state.
    func beginTraining(seed: UInt64) {}
    /// Floats of per-op scratch for a batch of `n` (statistics, masks).
    func extraFloats(_ n: Int) -> Int { 0 }
    /// Floats of im2col columns this op needs for a batch of `n`.
    func colFloats(_ n: Int) -> Int { 0 }
    func forward(_ p: Pass) {}
    func backward(_ p: Pass, _ d0: UnsafeMutablePointer<Float>?, _ d1: UnsafeMutablePointer<Float>?) {}
    /// After `backward` (dY final, e.g. a fused ReLU's mask applied): adds each example's squared
    /// norm of this op's parameter gradients to `p.norms`. Ops without parameters add nothing.
    func addExampleNorms(_ p: Pass) {}
    /// Largest (im2col floats of one example, weight floats) the per-example kernels need.
    var perExampleScratchFloats: (col: Int, weight: Int) { (0, 0) }
    /// Whether the op reads the NCHW network input directly (image ops that take a layout); the
    /// others read CNHW, so a copy op converts the input first when one of them reads it.
    var readsNCHWInput: Bool { false }
    /// Whether the op has parameters (its output gradient is kept in DP-SGD's norm pass).
    var hasParameters: Bool { false }
    /// Writes (overwrites) this op's parameter gradients from `outGrad`, a gradient of its output
    /// in the output's layout, and the forward's activations; no input gradient. DP-SGD's second
    /// half: `outGrad` is the norm pass's output gradient with example i scaled by its clip factor.
    func parameterGradients(_ p: Pass, outGrad: UnsafeMutablePointer<Float>) {}

    /// Layout of value `v` holding per-example shape `s` for a batch of n.
    func layout(_ v: Int, _ s: TensorShape, _ n: Int) -> ImageLayout {
        guard case let .image(c, h, w) = s else { return .nchw(n, s.count, 1, 1) }
        return v == 0 ? .nchw(n, c, h, w) : .cnhw(n, c, h, w)
    }
}

/// The NCHW → CNHW copy of the network input, for ops that read CNHW (elementwise ones, Add).
final class ToCNHWOp: Op {
    override func forward(_ p: Pass) {
        let x = layout(0, inShape, p.n), y = layout(output, outShape, p.n)
        for n in 0..<p.n { for c in 0..<x.channels {
            (p.act[output] + y.offset(n, c, 0, 0)).update(from: p.act[inputs[0]] + x.offset(n, c, 0, 0), count: x.plane)
        } }
    }
}
