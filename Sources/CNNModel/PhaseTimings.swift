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

    /// Clears all accumulated time.
    public func reset() { for i in seconds.indices { seconds[i] = 0 } }
}
