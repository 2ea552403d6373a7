// Network: any NetworkSpec as a trainable Model. Parameters live in one flat allocation in
// PyTorch's state_dict order (`parameterEntries`), with one gradient buffer of the same layout
// (an optimiser, Optimizer.swift, updates them through `withBuffers`); activations and gradients
// live in a workspace sized for a batch capacity and reused by every step (a training step
// allocates nothing once it exists).
// Initialisation as PyTorch's defaults, each layer kind's `initialise` (Layers/): conv/linear
// weight and bias U(±1/√fan_in) (Kaiming-uniform with a=√5 gives exactly this bound), GroupNorm
// weight 1 and bias 0; one seeded generator drawn in layout order.
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

/// Every buffer of one pass for batches of up to `capacity` examples.
final class NetworkWorkspace {
    let capacity: Int
    let values: [Scratch<Float>], gradients: [Scratch<Float>], extras: [Scratch<Float>]
    let scratch: [Scratch<Float>]
    let col: Scratch<Float>
    let act: UnsafeMutablePointer<UnsafeMutablePointer<Float>>
    let grad: UnsafeMutablePointer<UnsafeMutablePointer<Float>>
    let extra: UnsafeMutablePointer<UnsafeMutablePointer<Float>>

    init(capacity: Int, net: CompiledNetwork) {
        self.capacity = capacity
        let sizes = net.shapes.enumerated().map { v, s in v == 0 ? 1 : capacity * s.count }
        values = sizes.map { Scratch($0) }
        var slotSizes = [Int](repeating: 1, count: max(1, net.slotCount))
        for (v, s) in net.gradSlot.enumerated() where s >= 0 { slotSizes[s] = max(slotSizes[s], sizes[v]) }
        gradients = slotSizes.map { Scratch($0) }
        extras = net.ops.map { Scratch($0.extraFloats(capacity)) }
        let largest = sizes.max() ?? 1
        scratch = [Scratch(largest), Scratch(largest)]
        col = Scratch(net.ops.map { $0.colFloats(capacity) }.max() ?? 1)
        act = .allocate(capacity: values.count); grad = .allocate(capacity: values.count)
        extra = .allocate(capacity: max(1, extras.count))
        for (v, s) in values.enumerated() { act[v] = s.pointer }
        for v in values.indices { grad[v] = gradients[max(0, net.gradSlot[v])].pointer }
        for (i, s) in extras.enumerated() { extra[i] = s.pointer }
    }
    deinit { act.deallocate(); grad.deallocate(); extra.deallocate() }

    var bytes: Int {
        (values + gradients + extras + scratch + [col]).reduce(0) { $0 + $1.count } * 4
    }
}

/// A network built from a spec. Not thread-safe: one user at a time (a pool hands it out), which
/// is why it is `@unchecked Sendable` (it may move between tasks, never be shared by two at once).
public final class Network: Model, @unchecked Sendable {
    /// The spec it was built from.
    public let spec: NetworkSpec
    /// The spec's layers with their shapes and parameters.
    public let resolved: [ResolvedLayer]
    /// Shape of one input example.
    public let inputShape: TensorShape
    /// Number of logits.
    public let classes: Int
    /// Name, shape and offset of every parameter tensor, in flat-buffer order.
    public let parameterEntries: [ParameterEntry]
    /// Floats in the flat parameter buffer.
    public let parameterCount: Int
    let compiled: CompiledNetwork
    let params: UnsafeMutablePointer<Float>
    let grads: UnsafeMutablePointer<Float>
    var workspace: NetworkWorkspace?
    /// DP-SGD's per-example buffers (PerExample.swift), made by its first clipped step.
    var perExample: PerExampleWorkspace?
    var gemmWorkspace: GEMMWorkspace
    /// When set, training steps add their per-op wall-clock time here (benchmarks only).
    public var timings: PhaseTimings?
    /// When set, DP-SGD's clipped steps add their per-phase wall-clock time here (benchmarks only;
    /// `trainDPSGD(phaseTimes:)` attaches it).
    public var dpTimes: DPSGDPhaseTimes?

    /// Threads the kernels split work over (>= 1).
    public var threads: Int {
        didSet {
            threads = max(1, threads)
            if threads != gemmWorkspace.threads, let ws = try? GEMMWorkspace(threads: threads) { gemmWorkspace = ws }
        }
    }

    /// Builds `spec` for inputs of `input` shape and `classes` logits, parameters drawn from `seed`.
    /// Throws `ModelSpecError` (naming the layer) if the spec does not fit the input or classes.
    public init(spec: NetworkSpec, input: TensorShape, classes: Int, seed: UInt64, threads: Int = 2) throws {
        guard classes >= 1 else { throw CNNError.invalidArgument(name: "classes", value: classes) }
        guard threads >= 1 else { throw CNNError.invalidArgument(name: "threads", value: threads) }
        self.spec = spec
        resolved = try spec.resolve(input: input, classes: classes)
        inputShape = input
        self.classes = classes
        parameterEntries = NetworkSpec.parameterEntries(resolved)
        parameterCount = parameterEntries.last.map { $0.offset + $0.count } ?? 0
        compiled = compile(resolved, input: input)
        params = .allocate(capacity: max(1, parameterCount))
        grads = .allocate(capacity: max(1, parameterCount))
        grads.initialize(repeating: 0, count: max(1, parameterCount))
        params.initialize(repeating: 0, count: max(1, parameterCount))
        self.threads = threads
        gemmWorkspace = try GEMMWorkspace(threads: threads)
        initialiseParameters(seed: seed)
    }

    deinit { params.deallocate(); grads.deallocate() }

    /// PyTorch's default initialisation (each layer kind's `initialise`), drawn in layout order
    /// from one generator.
    func initialiseParameters(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        func visit(_ layers: [ResolvedLayer]) {
            for l in layers {
                l.spec.layer.initialise(l, params: params, rng: &rng)
                visit(l.body); visit(l.shortcut)
            }
        }
        visit(resolved)
    }

    /// Names of the phases `timings` records: each op forward, the loss, each op backward, SGD.
    public var phaseNames: [String] {
        compiled.ops.map { "\($0.name).forward" } + ["loss"] + compiled.ops.reversed().map { "\($0.name).backward" } + ["sgd"]
    }

    /// The flat parameters and gradients without copying (valid only inside `body`).
    public func withBuffers<R>(_ body: (_ parameters: UnsafeMutableBufferPointer<Float>,
                                        _ gradients: UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R {
        try body(UnsafeMutableBufferPointer(start: params, count: parameterCount),
                 UnsafeMutableBufferPointer(start: grads, count: parameterCount))
    }

    /// Bytes of activation workspace currently held (0 before the first pass).
    public var workspaceBytes: Int { (workspace?.bytes ?? 0) + gemmWorkspace.bytes + (perExample?.bytes ?? 0) }

    /// Frees the activation workspace (e.g. between federated rounds); the next pass reallocates it.
    public func releaseWorkspace() { workspace = nil; perExample = nil }

    /// Makes the workspace hold batches of up to `batch` examples.
    public func reserve(batch: Int) { _ = workspace(for: batch) }

    func workspace(for batch: Int) -> NetworkWorkspace {
        if let ws = workspace, ws.capacity >= batch { return ws }
        let ws = NetworkWorkspace(capacity: max(1, batch), net: compiled)
        workspace = ws
        return ws
    }

    func pass(_ ws: NetworkWorkspace, n: Int, training: Bool) -> Pass {
        Pass(n: n, training: training, act: ws.act, grad: ws.grad, extra: ws.extra, params: params, grads: grads,
             col: ws.col.pointer, threads: threads, gemm: gemmWorkspace)
    }

    /// Forward pass of `n` NCHW examples; returns the logits ([n, classes], valid until the next pass).
    func forward(_ images: UnsafePointer<Float>, n: Int, training: Bool, ws: NetworkWorkspace) -> UnsafeMutablePointer<Float> {
        ws.act[0] = UnsafeMutablePointer(mutating: images)
        let p = pass(ws, n: n, training: training)
        let t = timings
        t?.start()
        for (i, op) in compiled.ops.enumerated() { op.forward(p); t?.mark(i) }
        return ws.act[compiled.logits]
    }

    /// Backward pass after `forward` of the same batch: loss and every parameter's gradient.
    func backward(labels: UnsafePointer<Int32>, n: Int, ws: NetworkWorkspace) -> CrossEntropyResult {
        let ce = softmaxCrossEntropy(ws.act[compiled.logits], labels: labels, batch: n, classes: classes,
                                     logitsGrad: ws.grad[compiled.logits])
        timings?.mark(compiled.ops.count)
        backwardOps(pass(ws, n: n, training: true), ws: ws)
        return ce
    }

    /// The ops' backward passes from the logits' gradient (already in its buffer) down to the
    /// input; with `p.norms` set, each parameterised op also adds its per-example squared norms,
    /// and with `keep`, its final output gradient is copied to `keep.kept[op index]`.
    func backwardOps(_ p: Pass, ws: NetworkWorkspace, keep: PerExampleWorkspace? = nil) {
        let t = timings, ops = compiled.ops, n = p.n
        for k in stride(from: ops.count - 1, through: 0, by: -1) {
            let r = compiled.routes[k]
            func dest(_ slot: Int) -> UnsafeMutablePointer<Float>? {
                guard slot < r.count else { return nil }
                switch r[slot] {
                case .none: return nil
                case let .direct(v): return ws.grad[v]
                case let .accumulate(_, s): return ws.scratch[s].pointer
                }
            }
            ops[k].backward(p, dest(0), dest(1))
            if p.norms != nil {
                let d = dpTimes
                d?.mark(.normBackward)
                ops[k].addExampleNorms(p)
                d?.mark(.norms)
            }
            if let kept = keep?.kept[k] {
                kept.pointer.update(from: p.grad[ops[k].output], count: n * ops[k].outShape.count)
            }
            for route in r {
                if case let .accumulate(v, s) = route {
                    addForward(ws.grad[v], ws.scratch[s].pointer, ws.grad[v], count: n * compiled.shapes[v].count)
                }
            }
            t?.mark(2 * ops.count - k)
        }
    }

    /// Forward + backward of `n` examples (n <= the reserved capacity grows the workspace).
    public func forwardBackward(_ images: UnsafePointer<Float>, labels: UnsafePointer<Int32>, n: Int) -> Double {
        let ws = workspace(for: n)
        _ = forward(images, n: n, training: true, ws: ws)
        return backward(labels: labels, n: n, ws: ws).loss
    }
}
