// Model: what a client, the server's central evaluation, `flwr train` and `flwr bench train` need
// from a network, so none of them names a concrete one. `Network` (Network.swift) implements it
// for any NetworkSpec; the zoo (Zoo.swift) and `--model-spec` build specs. The network only:
// its optimiser is an `SGDOptimizer` (Optimizer.swift) and the training loops (`train`,
// Training.swift; `trainDPSGD`, DPSGD.swift) are written over any Model.

/// A trainable classifier over NCHW float32 inputs, its parameters in one flat buffer laid out
/// by `parameterEntries` (PyTorch state_dict names and shapes, stable order). Not thread-safe:
/// one user at a time (a pool hands instances out), hence `@unchecked Sendable` conformers.
public protocol Model: AnyObject, Sendable {
    /// Shape of one input example.
    var inputShape: TensorShape { get }
    /// Number of output logits.
    var classes: Int { get }
    /// Floats in the flat parameter buffer.
    var parameterCount: Int { get }
    /// Name, shape and offset of every parameter tensor, in flat-buffer order.
    var parameterEntries: [ParameterEntry] { get }
    /// Threads the kernels use (>= 1).
    var threads: Int { get set }
    /// Bytes of activation workspace held now.
    var workspaceBytes: Int { get }

    /// A copy of all parameters in layout order.
    func parameters() -> [Float]
    /// Replaces all parameters (throws if the count differs).
    func setParameters(_ flat: UnsafeBufferPointer<Float>) throws
    /// Read-only view of the flat parameters (valid inside `body` only).
    func withParameters<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R

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
    /// The optimiser that `step` applies (its momentum buffer persists between calls; `train`
    /// starts it fresh, DP-SGD unless told to keep it).
    var optimizer: SGDOptimizer { get }
    /// Read-write view of the flat gradient buffer (e.g. to add a proximal term before `step`).
    func withGradients<R>(_ body: (UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R
    /// One update of the parameters from the gradient buffer by `optimizer`.
    func step(_ sgd: SGDConfig)
    /// Makes the workspace hold batches of up to `batch` examples.
    func reserve(batch: Int)
    /// Frees the activation workspace (the next pass reallocates it).
    func releaseWorkspace()

    /// Readies per-call training state before a run of steps (dropout masks reseeded from
    /// `seed`); `train` (Training.swift, the loop over any Model) calls it first.
    func beginTraining(seed: UInt64)
    /// Mean loss and accuracy over the data.
    func evaluate(images: UnsafeBufferPointer<Float>, labels: UnsafeBufferPointer<Int32>, batchSize: Int) throws -> EvalResult
    /// Logits [count, classes] of `count` examples.
    func logits(images: UnsafeBufferPointer<Float>, count: Int) throws -> [Float]
}

extension Model {
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
