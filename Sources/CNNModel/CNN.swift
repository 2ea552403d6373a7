// CNN: the reference network of every flwr client, with its parameters in one flat buffer.
//
//   input N×C×H×W (NCHW, float32)
//   conv3x3(C→32, pad 1)→ReLU→maxpool2 → conv3x3(32→64)→ReLU→maxpool2
//   → conv3x3(64→128)→ReLU→maxpool2 → conv3x3(128→256)→ReLU→maxpool2 → flatten (PyTorch order)
//   → linear(256*(H/16)*(W/16) → K)                       loss: softmax cross-entropy (mean)
// Parameters: one allocation in PyTorch's state_dict order (`layout`); 390,410 floats for
// 1×28×28 and 10 classes, 398,666 for 3×32×32. Initialised like PyTorch's defaults:
// Kaiming-uniform(a=√5) weights and U(±1/√fan_in) biases, i.e. U(±1/√fan_in) for both, seeded.
import Tensor

/// The reference CNN. Not thread-safe: one instance is used by one task at a time, which is why
/// it is `@unchecked Sendable` (it may move between tasks, never be shared by two at once).
public final class CNN: @unchecked Sendable {
    /// Input channels, height, width and the number of classes.
    public let channels: Int, height: Int, width: Int, classes: Int
    let entries: [ParameterEntry]
    let blocks: [BlockGeometry]
    let features: Int
    /// Number of floats in the flat parameter buffer.
    public let parameterCount: Int
    let params: UnsafeMutablePointer<Float>
    let grads: UnsafeMutablePointer<Float>
    let velocity: UnsafeMutablePointer<Float>
    var workspace: Workspace?
    /// When set, training steps add their per-phase wall-clock time here (benchmarks only).
    public var timings: PhaseTimings?
    var gemmWorkspace: GEMMWorkspace

    /// Threads the kernels split work over (>= 1; 2 on this project's machines).
    public var threads: Int {
        didSet {
            threads = max(1, threads)
            if threads != gemmWorkspace.threads, let ws = try? GEMMWorkspace(threads: threads) { gemmWorkspace = ws }
        }
    }

    /// Builds the network for C×H×W inputs and `classes` outputs, parameters drawn from `seed`.
    /// Throws if H or W < 16 (four poolings need them) or a size is not positive.
    public init(channels: Int, height: Int, width: Int, classes: Int, seed: UInt64, threads: Int = 2) throws {
        for (name, v) in [("channels", channels), ("height", height), ("width", width), ("classes", classes),
                          ("threads", threads)] where v <= 0 {
            throw CNNError.invalidArgument(name: name, value: v)
        }
        guard height >= 16, width >= 16 else {
            throw CNNError.inputTooSmall(channels: channels, height: height, width: width)
        }
        self.channels = channels; self.height = height; self.width = width; self.classes = classes
        entries = makeLayout(channels: channels, height: height, width: width, classes: classes)
        var geometry: [BlockGeometry] = []
        var cin = channels, h = height, w = width
        for cout in convChannels {
            geometry.append(BlockGeometry(inChannels: cin, outChannels: cout, height: h, width: w))
            cin = cout; h /= 2; w /= 2
        }
        blocks = geometry
        features = cin * h * w
        parameterCount = entries.last.map { $0.offset + $0.count } ?? 0
        params = .allocate(capacity: parameterCount)
        grads = .allocate(capacity: parameterCount)
        velocity = .allocate(capacity: parameterCount)
        grads.initialize(repeating: 0, count: parameterCount)
        velocity.initialize(repeating: 0, count: parameterCount)
        self.threads = threads
        gemmWorkspace = try GEMMWorkspace(threads: threads)
        initialiseParameters(seed: seed)
    }

    deinit {
        params.deallocate(); grads.deallocate(); velocity.deallocate()
    }

    /// Fills the parameters as PyTorch's defaults do: every weight and bias of a layer with
    /// fan-in f is U(-1/√f, 1/√f) (Kaiming-uniform with a=√5 gives exactly this bound).
    func initialiseParameters(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        for e in entries {
            let fanIn: Int
            if e.name.hasPrefix("fc") { fanIn = features } else {
                let block = blocks[Int(e.name.dropFirst(4).prefix(1)).map { $0 - 1 } ?? 0]
                fanIn = block.inChannels * 9
            }
            let bound = 1 / Float(fanIn).squareRoot()
            for i in e.offset..<(e.offset + e.count) { params[i] = Float.random(in: -bound...bound, using: &rng) }
        }
    }

    /// (name, PyTorch shape) of every parameter tensor, in flat-buffer order.
    public var layout: [(name: String, shape: [Int])] { entries.map { ($0.name, $0.shape) } }

    /// Name, shape and offset of every parameter tensor, in flat-buffer order.
    public var parameterEntries: [ParameterEntry] { entries }

    /// A copy of all parameters, in layout order.
    public func parameters() -> [Float] { Array(UnsafeBufferPointer(start: params, count: parameterCount)) }

    /// Replaces all parameters; throws naming both counts if `flat` has the wrong length.
    public func setParameters(_ flat: [Float]) throws {
        guard flat.count == parameterCount else {
            throw CNNError.parameterCountMismatch(expected: parameterCount, got: flat.count)
        }
        flat.withUnsafeBufferPointer { src in
            if let base = src.baseAddress { params.update(from: base, count: parameterCount) }
        }
    }

    /// Replaces all parameters from a buffer (no intermediate array); same check as setParameters.
    public func setParameters(_ flat: UnsafeBufferPointer<Float>) throws {
        guard flat.count == parameterCount, let base = flat.baseAddress else {
            throw CNNError.parameterCountMismatch(expected: parameterCount, got: flat.count)
        }
        params.update(from: base, count: parameterCount)
    }

    /// Read-only view of the flat parameters without copying (valid only inside `body`).
    public func withParameters<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(start: params, count: parameterCount))
    }

    /// Bytes of activation workspace currently held (0 before the first forward pass).
    public var workspaceBytes: Int { (workspace?.bytes ?? 0) + gemmWorkspace.bytes }

    /// Frees the activation workspace (e.g. between federated rounds); the next call reallocates it.
    public func releaseWorkspace() { workspace = nil }

    /// The workspace for batches of up to `batch` images, created or grown only when needed.
    func workspace(for batch: Int) -> Workspace {
        if let ws = workspace, ws.capacity >= batch { return ws }
        let ws = Workspace(capacity: batch, blocks: blocks, imageSize: channels * height * width,
                           features: features, classes: classes)
        workspace = ws
        return ws
    }
}
