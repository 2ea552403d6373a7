// Waiting for a state to arrive by waking on the change that brings it, not by polling: the code
// under test offers an `AsyncStream` of the watched value (`PayloadSlots.waitingCounts()`,
// `WireServer.connectionCounts()`, a test registry's changes), and the test takes its first
// element that satisfies the condition. The timeout only ends a wait that would otherwise hang;
// it is never what the test measures.
import FlowerCore
import Synchronization

extension AsyncSequence where Self: Sendable, Element: Sendable {
    /// The first element that satisfies `predicate`, or nil when `timeout` passes first (or the
    /// sequence ends without one).
    public func first(within timeout: Duration, where predicate: @escaping @Sendable (Element) -> Bool) async -> Element? {
        await withTaskGroup(of: Element?.self) { group in
            group.addTask {
                do {
                    for try await element in self where predicate(element) { return element }
                } catch {}
                return nil
            }
            group.addTask {
                try? await Task.sleep(for: timeout)  // the bound on a wait that would hang, not a poll
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
    }
}

/// A change counter for a test's own fakes (a client registry): `changed()` after each change,
/// `wait(for:)` re-checks its condition on each one.
public final class ChangeSignal: Sendable {
    private let watchers = Mutex(ChangeWatchers<Void>())

    public init() {}

    /// Wakes every waiter to re-check its condition; call it after the change is visible.
    public func changed() { watchers.withLock { $0.send(()) } }

    /// Waits until `condition` holds (true), checked now and after each `changed()`, or until
    /// `timeout` passes (false).
    public func wait(for condition: @escaping @Sendable () -> Bool, timeout: Duration = .seconds(20)) async -> Bool {
        let changes = ChangeWatchers.stream(add: { c in watchers.withLock { $0.add(c, current: ()) } },
                                            remove: { [weak self] id in self?.watchers.withLock { $0.remove(id) } })
        return await changes.first(within: timeout) { _ in condition() } != nil
    }
}

/// Returns once the calling task is cancelled (for a stand-in that must still be busy when its
/// caller gives up): it suspends on a stream nobody feeds, which ends on cancellation.
public func untilCancelled() async {
    let (never, continuation) = AsyncStream<Void>.makeStream()
    for await _ in never {}
    withExtendedLifetime(continuation) {}
}
