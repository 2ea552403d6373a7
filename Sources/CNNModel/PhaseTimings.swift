// PhaseTimings: optional per-op, per-pass wall-clock accounting of training steps (for
// `flwr bench train --breakdown` and BENCHMARKS.md). Off unless `Network.timings` is set.
import Dispatch

/// Accumulated seconds per phase of the training step, in execution order.
public final class PhaseTimings: @unchecked Sendable {
    /// Phase names (Network.phaseNames), e.g. "conv2 conv2d+relu.forward", "loss", "sgd".
    public let names: [String]
    /// Seconds spent in each phase, same order as `names`.
    public private(set) var seconds: [Double]
    private var last: UInt64 = 0

    /// Empty timings for the given phases.
    public init(names: [String]) {
        self.names = names
        seconds = Array(repeating: 0, count: names.count)
    }

    /// Starts the clock for the next phase.
    func start() { last = DispatchTime.now().uptimeNanoseconds }

    /// Adds the time since the previous mark to phase `index` and restarts the clock.
    func mark(_ index: Int) {
        let now = DispatchTime.now().uptimeNanoseconds
        if index < seconds.count { seconds[index] += Double(now - last) / 1e9 }
        last = now
    }

    /// Adds the time since the previous mark to the last phase (the optimiser's update, which the
    /// training loop runs after the network's backward pass) and restarts the clock.
    func markUpdate() { mark(names.count - 1) }

    /// Clears all accumulated time.
    public func reset() { for i in seconds.indices { seconds[i] = 0 } }
}

/// Where a DP-SGD step's time goes (`flwr bench train --only dpsgd`): seconds per phase summed
/// over the steps taken while it is attached (`Network.dpTimes` and `trainDPSGD(phaseTimes:)`).
/// Off unless set; benchmarks only.
public final class DPSGDPhaseTimes: @unchecked Sendable {
    /// The phases in step order.
    public enum Phase: Int, CaseIterable, Sendable {
        /// Poisson sample and copying the sampled examples into the chunk.
        case sample
        /// Forward pass and loss.
        case forward
        /// The first backward pass without the per-example norm kernels.
        case normBackward
        /// The per-example squared-norm kernels (PerExampleNorms.swift).
        case norms
        /// The clipped gradient sum from the per-example scales.
        case clippedGradient
        /// Adding the chunk's clipped sum into the step's sum.
        case accumulate
        /// The Gaussian noise.
        case noise
        /// Scaling by the expected batch size, the gradient adjustment and the SGD update.
        case sgd

        /// The name in the benchmark's lines.
        public var name: String {
            switch self {
            case .sample: "sample"
            case .forward: "forward"
            case .normBackward: "norm_backward"
            case .norms: "per_example_norms"
            case .clippedGradient: "clipped_gradient"
            case .accumulate: "accumulate"
            case .noise: "noise"
            case .sgd: "sgd"
            }
        }
    }

    /// Seconds per phase, indexed by `Phase.rawValue`.
    public private(set) var seconds = [Double](repeating: 0, count: Phase.allCases.count)
    /// Steps recorded.
    public internal(set) var steps = 0
    private var last: UInt64 = 0

    public init() {}

    /// Starts the clock for the next phase.
    func start() { last = DispatchTime.now().uptimeNanoseconds }

    /// Adds the time since the previous mark (or start) to `phase` and restarts the clock.
    func mark(_ phase: Phase) {
        let now = DispatchTime.now().uptimeNanoseconds
        seconds[phase.rawValue] += Double(now - last) / 1e9
        last = now
    }

    /// Clears all accumulated time and the step count.
    public func reset() { for i in seconds.indices { seconds[i] = 0 }; steps = 0 }
}
