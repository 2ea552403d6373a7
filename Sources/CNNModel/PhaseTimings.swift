// PhaseTimings: optional per-layer, per-pass wall-clock accounting of training steps (for
// `flwr bench train --breakdown` and BENCHMARKS.md). Off unless `CNN.timings` is set.
import Dispatch

/// Accumulated seconds per phase of the training step, in execution order.
public final class PhaseTimings: @unchecked Sendable {
    /// Phase names, e.g. "conv2.forward", "pool2.backward", "fc", "sgd".
    public let names: [String]
    /// Seconds spent in each phase, same order as `names`.
    public private(set) var seconds: [Double]
    private var last: UInt64 = 0

    /// Empty timings for a network with `blocks` conv blocks.
    public init(blocks: Int) {
        var n: [String] = []
        for i in 1...blocks { n += ["conv\(i).forward", "pool\(i).forward"] }
        n.append("fc+loss")
        for i in stride(from: blocks, through: 1, by: -1) { n += ["pool\(i)+relu.backward", "conv\(i).backward"] }
        n.append("sgd")
        names = n
        seconds = Array(repeating: 0, count: n.count)
    }

    /// Starts the clock for the next phase.
    func start() { last = DispatchTime.now().uptimeNanoseconds }

    /// Adds the time since the previous mark to phase `index` and restarts the clock.
    func mark(_ index: Int) {
        let now = DispatchTime.now().uptimeNanoseconds
        seconds[index] += Double(now - last) / 1e9
        last = now
    }

    /// Clears all accumulated time.
    public func reset() { for i in seconds.indices { seconds[i] = 0 } }
}
