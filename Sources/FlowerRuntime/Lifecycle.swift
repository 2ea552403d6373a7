// Process lifecycle of the long-running commands: SIGTERM/SIGINT cancel the running work (a pod
// being stopped, Ctrl-C), and after training a server may linger, answering late clients with
// Finish, until a signal arrives. Everything here waits on events (the signal source, the client
// manager's registration wake-ups); nothing polls.
import Dispatch
import FlowerCore
import Foundation
import Logging
import Synchronization

/// How a long-running command ended.
public enum RunOutcome<T: Sendable>: Sendable {
    case finished(T)
    case failed(any Error)
    case signalled(String)
}

/// An error whose description is the whole message the user sees (exit code 1).
public struct ExitMessage: Error, CustomStringConvertible {
    public let error: any Error
    public init(error: any Error) { self.error = error }
    public var description: String { "\(error)" }
}

/// Which termination signal arrived, if any.
private final class SignalFlag: Sendable {
    let name = Mutex<String?>(nil)
}

/// Runs `body`, cancelling it on SIGTERM or SIGINT (a pod being stopped, Ctrl-C).
public func runUntilSignal<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async -> RunOutcome<T> {
    let task = Task { try await body() }
    let flag = SignalFlag()
    let subscription = SignalWatcher.shared.subscribe { name in
        flag.name.withLock { $0 = $0 ?? name }
        task.cancel()
    }
    defer { subscription.cancel() }
    let result = await task.result
    if let name = flag.name.withLock({ $0 }) { return .signalled(name) }
    switch result {
    case .success(let v): return .finished(v)
    case .failure(let e): return .failed(e)
    }
}

/// One subscription to SIGTERM/SIGINT.
public struct SignalSubscription: Sendable {
    let id: Int
    public func cancel() { SignalWatcher.shared.unsubscribe(id) }
}

/// The process's SIGTERM/SIGINT sources, created once and never cancelled. (Cancelling a
/// dispatch signal source and creating a new one for the same signal lost the signal: `--linger`
/// after training ignored SIGTERM until the pod was killed.) Handlers subscribe and unsubscribe.
public final class SignalWatcher: Sendable {
    public static let shared = SignalWatcher()
    private let handlers = Mutex<(next: Int, byID: [Int: @Sendable (String) -> Void])>((0, [:]))
    /// Kept only so the sources live as long as the process; written once in init, never mutated.
    private nonisolated(unsafe) let sources: [any DispatchSourceSignal]

    private init() {
        sources = [(SIGTERM, "SIGTERM"), (SIGINT, "SIGINT")].map { sig, name in
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { SignalWatcher.shared.deliver(name) }
            source.resume()
            return source
        }
    }

    /// Calls `handler` with the signal's name on SIGTERM or SIGINT instead of dying, until the
    /// returned subscription is cancelled.
    public func subscribe(_ handler: @escaping @Sendable (String) -> Void) -> SignalSubscription {
        let id = handlers.withLock { h -> Int in
            h.next += 1
            h.byID[h.next] = handler
            return h.next
        }
        return SignalSubscription(id: id)
    }

    private func deliver(_ name: String) {
        for h in handlers.withLock({ Array($0.byID.values) }) { h(name) }
    }

    func unsubscribe(_ id: Int) {
        handlers.withLock { _ = $0.byID.removeValue(forKey: id) }
    }
}

/// After training: every client that connects is answered with Finish and let go. The loop
/// sleeps in the client manager's `waitFor(count: 1)`, which a registration wakes, and ends when
/// its task is cancelled (the manager resumes the waiter at once).
public enum Linger {
    /// Finishes clients of `manager` as they register until the calling task is cancelled;
    /// returns how many clients were finished.
    @discardableResult
    public static func finishLateClients(manager: InMemoryClientManager, rounds: Int) async -> Int {
        var finished = 0
        while !Task.isCancelled {
            for client in manager.all() {
                await client.finish(roundsCompleted: rounds, reason: "training already finished after \(rounds) rounds")
                manager.unregister(client)
                finished += 1
            }
            // Wakes on the next registration, or on cancellation; the timeout only bounds one wait.
            _ = await manager.waitFor(count: 1, timeout: .seconds(86_400))
        }
        return finished
    }

    /// Lingers until SIGTERM/SIGINT.
    public static func untilSignal(manager: InMemoryClientManager, rounds: Int, logger: Logger) async {
        logger.info("training complete; lingering (late clients get Finish) until SIGTERM")
        let task = Task { await finishLateClients(manager: manager, rounds: rounds) }
        let flag = SignalFlag()
        let subscription = SignalWatcher.shared.subscribe { name in
            flag.name.withLock { $0 = $0 ?? name }
            task.cancel()
        }
        defer { subscription.cancel() }
        _ = await task.value
        logger.notice("stopping on \(flag.name.withLock { $0 } ?? "a signal") after lingering")
    }
}
