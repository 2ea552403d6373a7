// Parallel: a small parallel-for over the machine's cores, and the Sendable wrapper its workers use.
import Dispatch

/// A value (typically raw pointers) handed to parallel workers. Audited use only: every
/// worker of one `Parallel.run` writes a disjoint range of the memory it points to.
public struct UnsafeTransfer<Value>: @unchecked Sendable {
    /// The wrapped value.
    public let value: Value
    /// Wraps `value`.
    @inlinable public init(_ value: Value) { self.value = value }
}

/// Parallel-for helpers (work split across `parts` workers; one part runs inline).
public enum Parallel {
    /// Runs `body(part)` for part in 0..<parts: inline when parts <= 1, else on the persistent
    /// WorkerPool, or with concurrentPerform when the pool is busy with another job.
    public static func run(_ parts: Int, _ body: @Sendable (Int) -> Void) {
        if parts <= 1 { body(0); return }
        if WorkerPool.shared.run(parts, body) { return }
        DispatchQueue.concurrentPerform(iterations: parts, execute: body)
    }

    /// The `part`-th of `parts` contiguous ranges covering 0..<count, boundaries rounded to
    /// multiples of `align` (the last range takes the rest; some ranges may be empty).
    @inlinable
    public static func range(_ part: Int, of parts: Int, count: Int, align: Int = 1) -> Range<Int> {
        let chunks = (count + align - 1) / align
        let lo = min(count, (chunks * part / parts) * align)
        let hi = part == parts - 1 ? count : min(count, (chunks * (part + 1) / parts) * align)
        return lo..<max(lo, hi)
    }
}
