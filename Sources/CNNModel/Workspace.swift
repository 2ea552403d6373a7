// Workspace: every activation and gradient buffer of one CNN, sized for a batch capacity and
// reused by every step (a training step allocates nothing once the workspace exists).
import Tensor

/// A fixed-size raw allocation (not zeroed), freed with its owner.
final class Scratch<Element> {
    let pointer: UnsafeMutablePointer<Element>
    let count: Int
    init(_ count: Int) {
        self.count = max(count, 1)
        pointer = .allocate(capacity: self.count)
    }
    deinit { pointer.deallocate() }
}

/// Geometry of conv block i (conv → ReLU → pool) for a given input.
struct BlockGeometry {
    let inChannels: Int, outChannels: Int, height: Int, width: Int
    var conv: Conv2dShape { Conv2dShape(inChannels: inChannels, outChannels: outChannels) }
    /// Floats of the conv output for `batch` images.
    func actCount(_ batch: Int) -> Int { outChannels * batch * height * width }
    /// Floats of the pooled output for `batch` images.
    func poolCount(_ batch: Int) -> Int { outChannels * batch * (height / 2) * (width / 2) }
    func actLayout(_ batch: Int) -> ImageLayout { .cnhw(batch, outChannels, height, width) }
    func poolLayout(_ batch: Int) -> ImageLayout { .cnhw(batch, outChannels, height / 2, width / 2) }
}

/// Activations (forward) and their gradients (backward) for up to `capacity` images.
/// Layouts: the model input is NCHW; act/pool are CNHW ([C, N*H*W]); feat/logits are [N, F]/[N, K].
final class Workspace {
    let capacity: Int
    let act: [Scratch<Float>]        // conv+ReLU output of block i
    let pool: [Scratch<Float>]       // pooled output of block i (input of block i+1)
    let dAct: Scratch<Float>         // gradient of one block's conv output (largest block)
    let dPool: Scratch<Float>        // gradient of one block's pooled output (largest block)
    let feat: Scratch<Float>, dFeat: Scratch<Float>
    let logits: Scratch<Float>, dLogits: Scratch<Float>
    let batchImages: Scratch<Float>  // a shuffled batch gathered contiguously (NCHW)
    let batchLabels: Scratch<Int32>

    init(capacity: Int, blocks: [BlockGeometry], imageSize: Int, features: Int, classes: Int) {
        self.capacity = capacity
        act = blocks.map { Scratch($0.actCount(capacity)) }
        pool = blocks.map { Scratch($0.poolCount(capacity)) }
        dAct = Scratch(blocks.map { $0.actCount(capacity) }.max() ?? 1)
        dPool = Scratch(blocks.map { $0.poolCount(capacity) }.max() ?? 1)
        feat = Scratch(capacity * features); dFeat = Scratch(capacity * features)
        logits = Scratch(capacity * classes); dLogits = Scratch(capacity * classes)
        batchImages = Scratch(capacity * imageSize); batchLabels = Scratch(capacity)
    }

    /// Bytes held by all buffers.
    var bytes: Int {
        let floats = act.reduce(0) { $0 + $1.count } + pool.reduce(0) { $0 + $1.count } + dAct.count
            + dPool.count + 2 * feat.count + 2 * logits.count + batchImages.count + batchLabels.count
        return floats * 4
    }
}
