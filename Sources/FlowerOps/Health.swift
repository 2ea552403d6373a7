// /healthz and /readyz: liveness is "every event loop and the Swift task pool answer within a
// deadline"; readiness is a question the command answers (listening, enough clients, joined).
import NIOCore
import Synchronization

/// Whether a process is ready for traffic, with a one-line reason when not.
public enum Readiness: Sendable, Equatable {
    case ready
    case notReady(String)
}

/// Liveness: submits a no-op to every event loop of `group` and to Swift's cooperative task pool,
/// and reports the ones that did not run it within `timeout`. A wedged loop (a handler stuck in a
/// blocking call, CPU work on an event loop) makes /healthz answer 503, and when the loop serving
/// /healthz itself is the stuck one, the probe gets no answer at all: both fail a Kubernetes probe.
public struct LivenessCheck: Sendable {
    /// The event loops to check (the wire's group).
    public let group: any EventLoopGroup
    /// How long each loop has to answer.
    public let timeout: TimeAmount

    /// A check of `group` with a per-probe deadline.
    public init(group: any EventLoopGroup, timeout: TimeAmount = .seconds(2)) {
        self.group = group
        self.timeout = timeout
    }

    /// nil when everything answered in time, else a one-line reason. Completes on `loop`.
    public func check(on loop: any EventLoop) -> EventLoopFuture<String?> {
        let loops = Array(group.makeIterator())
        let names = loops.indices.map { "event loop \($0 + 1) of \(loops.count)" } + ["the Swift task pool"]
        let pending = Mutex(Set(names.indices))
        let promise = loop.makePromise(of: String?.self)
        let done = Mutex(false)
        @Sendable func answered(_ i: Int) {
            let left = pending.withLock { p -> Int in p.remove(i); return p.count }
            if left == 0, done.withLock({ d in defer { d = true }; return !d }) { promise.succeed(nil) }
        }
        for (i, l) in loops.enumerated() {
            l.execute { answered(i) }
        }
        let poolIndex = names.count - 1
        Task.detached { answered(poolIndex) }
        let seconds = Double(timeout.nanoseconds) / 1e9
        loop.scheduleTask(in: timeout) {
            guard done.withLock({ d in defer { d = true }; return !d }) else { return }
            let late = pending.withLock { $0.sorted().map { names[$0] } }
            promise.succeed("\(late.joined(separator: ", ")) did not answer within \(seconds) s")
        }
        return promise.futureResult
    }
}
