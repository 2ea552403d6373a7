// Model: what a client, the server's central evaluation, `flwr train` and `flwr bench train` need
// from a network, so none of them names a concrete one. `Network` (Network.swift) implements it
// for any NetworkSpec; the zoo (Zoo.swift) and `--model-spec` build specs. The network only: its
// shape, its flat parameter and gradient buffers, its passes and its workspace. What follows from
// those (the parameter count, copies and views of the buffers, evaluation from the logits) is
// written once below for any Model; the optimiser is an `SGDOptimizer` (Optimizer.swift) that the
// training loops (`train`, Training.swift; `trainDPSGD`, DPSGD.swift) hold apart from the model.

/// A trainable classifier over NCHW float32 inputs, its parameters in one flat buffer laid out
/// by `parameterEntries` (PyTorch state_dict names and shapes, stable order), with one gradient
/// buffer of the same layout. Not thread-safe: one user at a time (a pool hands instances out),
/// hence `@unchecked Sendable` conformers.
public protocol Model: AnyObject, Sendable {
    /// Shape of one input example.
    var inputShape: TensorShape { get }
    /// Number of output logits.
    var classes: Int { get }
    /// Name, shape and offset of every parameter tensor, in flat-buffer order.
    var parameterEntries: [ParameterEntry] { get }
    /// Threads the kernels use (>= 1).
    var threads: Int { get set }
    /// Bytes of activation workspace held now.
    var workspaceBytes: Int { get }

    /// The flat parameter and gradient buffers (`parameterCount` floats each, both writable;
    /// valid inside `body` only). The gradients are what the last `forwardBackward` or
    /// `clippedGradientSum` left, until something (a proximal term, DP noise) changes them.
    func withBuffers<R>(_ body: (_ parameters: UnsafeMutableBufferPointer<Float>,
                                 _ gradients: UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R

    /// Forward pass of `n` NCHW examples at `images` in training mode, backward pass of the mean
    /// cross-entropy against `labels`: gradients into the flat gradient buffer (overwritten).
    /// Returns the batch's mean loss. `n` must not exceed the workspace capacity (`reserve`).
    func forwardBackward(_ images: UnsafePointer<Float>, labels: UnsafePointer<Int32>, n: Int) -> Double
    /// DP-SGD's clipped step (Abadi et al. 2016): forward and backward of `n` examples leaving
    /// Σᵢ min(1, C/‖gᵢ‖)·gᵢ in the gradient buffer (overwritten), gᵢ the gradient of example i's
    /// own cross-entropy over all parameters; ‖gᵢ‖ written to `norms` when given (n floats).
    /// Returns the batch's mean loss.
    func clippedGradientSum(_ images: UnsafePointer<Float>, labels: UnsafePointer<Int32>, n: Int, maxGradNorm: Float,
                            norms: UnsafeMutablePointer<Float>?) -> Double
    /// Makes the workspace hold batches of up to `batch` examples.
    func reserve(batch: Int)
    /// Frees the activation workspace (the next pass reallocates it).
    func releaseWorkspace()

    /// Readies per-call training state before a run of steps (dropout masks reseeded from
    /// `seed`); `train` (Training.swift, the loop over any Model) calls it first.
    func beginTraining(seed: UInt64)
    /// Logits [count, classes] of `count` examples (inference mode).
    func logits(images: UnsafeBufferPointer<Float>, count: Int) throws -> [Float]
}

extension Model {
    /// Floats in the flat parameter buffer (the end of the last parameter tensor).
    public var parameterCount: Int { parameterEntries.last.map { $0.offset + $0.count } ?? 0 }

    /// Read-only view of the flat parameters (valid inside `body` only).
    public func withParameters<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try withBuffers { p, _ in try body(UnsafeBufferPointer(p)) }
    }

    /// Read-write view of the flat gradient buffer (e.g. to add a proximal term before a step).
    public func withGradients<R>(_ body: (UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R {
        try withBuffers { _, g in try body(g) }
    }

    /// A copy of all parameters in layout order.
    public func parameters() -> [Float] { withParameters { Array($0) } }

    /// Replaces all parameters; throws naming both counts on a length mismatch.
    public func setParameters(_ flat: UnsafeBufferPointer<Float>) throws {
        let count = parameterCount
        guard flat.count == count else { throw CNNError.parameterCountMismatch(expected: count, got: flat.count) }
        guard let source = flat.baseAddress else { return }
        withBuffers { p, _ in p.baseAddress?.update(from: source, count: count) }
    }

    /// (name, PyTorch shape) of every parameter tensor, in flat-buffer order.
    public var layout: [(name: String, shape: [Int])] { parameterEntries.map { ($0.name, $0.shape) } }

    /// Replaces all parameters from an array (throws if the count differs).
    public func setParameters(_ flat: [Float]) throws {
        try flat.withUnsafeBufferPointer { try setParameters($0) }
    }

    /// Trains without a progress callback.
    public func train(images: UnsafeBufferPointer<Float>, labels: UnsafeBufferPointer<Int32>, epochs: Int,
                      batchSize: Int, sgd: SGDConfig, seed: UInt64) throws -> TrainResult {
        try train(images: images, labels: labels, epochs: epochs, batchSize: batchSize, sgd: sgd, seed: seed,
                  adjustGradients: nil, progress: nil)
    }

    /// Trains with a progress callback.
    public func train(images: UnsafeBufferPointer<Float>, labels: UnsafeBufferPointer<Int32>, epochs: Int,
                      batchSize: Int, sgd: SGDConfig, seed: UInt64, progress: ((TrainProgress) -> Void)?) throws -> TrainResult {
        try train(images: images, labels: labels, epochs: epochs, batchSize: batchSize, sgd: sgd, seed: seed,
                  adjustGradients: nil, progress: progress)
    }

    /// Evaluates in batches of up to 256.
    public func evaluate(images: UnsafeBufferPointer<Float>, labels: UnsafeBufferPointer<Int32>) throws -> EvalResult {
        try evaluate(images: images, labels: labels, batchSize: 256)
    }
}
