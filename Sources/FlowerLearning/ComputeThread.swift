// ComputeThread: a dedicated OS thread for CPU work (training, evaluation). Swift's cooperative
// pool has one thread per core and NIO's event loops do I/O; seconds of training on either make
// timers, round deadlines and reads late. Work is handed over with a continuation and the caller
// awaits without holding a cooperative thread.
import Foundation
import Synchronization

/// One thread that runs submitted jobs in order.
public final class ComputeThread: Sendable {
    private struct State {
        var jobs: [@Sendable () -> Void] = []
        var started = false
    }
    private let state = Mutex(State())
    private let wake = NSCondition()
    private let name: String

    /// A thread named `name`, started on first use and kept for the life of the process's pool.
    public init(name: String) { self.name = name }

    /// Runs `work` on this thread and returns its result to the awaiting task.
    public func run<R: Sendable>(_ work: @escaping @Sendable () throws -> R) async throws -> R {
        try await withCheckedThrowingContinuation { (cont: CheckedContinuation<R, any Error>) in
            submit { cont.resume(with: Result { try work() }) }
        }
    }

    private func submit(_ job: @escaping @Sendable () -> Void) {
        let start: Bool = state.withLock { s in
            s.jobs.append(job)
            if s.started { return false }
            s.started = true
            return true
        }
        wake.lock(); wake.signal(); wake.unlock()
        if start {
            let t = Thread { [self] in loop() }
            t.name = name
            t.stackSize = 8 << 20
            t.start()
        }
    }

    private func loop() {
        while true {
            wake.lock()
            var job = state.withLock { s in s.jobs.isEmpty ? nil : s.jobs.removeFirst() }
            while job == nil {
                wake.wait()
                job = state.withLock { s in s.jobs.isEmpty ? nil : s.jobs.removeFirst() }
            }
            wake.unlock()
            job?()
        }
    }
}
