// Observation for code that waits on a value held under a lock (how many connections wait for a
// payload slot, how many TCP connections are open): a watcher gets an `AsyncStream` of the
// value, its current value first and then every change, so it wakes on the change itself instead
// of polling. Tests use this to wait for a state they cannot otherwise see arrive.

/// The watchers of one value, kept inside the owner's locked state. The owner calls `send` under
/// its lock after each change (the streams then see changes in the order they happened); with
/// nobody watching that is one empty-dictionary check.
package struct ChangeWatchers<Value: Sendable>: Sendable {
    private var streams: [UInt64: AsyncStream<Value>.Continuation] = [:]
    private var nextID: UInt64 = 0

    package init() {}

    /// Passes `value` to every watcher.
    package func send(_ value: Value) {
        guard !streams.isEmpty else { return }
        for c in streams.values { c.yield(value) }
    }

    /// Adds a watcher and sends it `current`; `remove(_:)` the returned id when its stream ends.
    package mutating func add(_ continuation: AsyncStream<Value>.Continuation, current: Value) -> UInt64 {
        nextID &+= 1
        streams[nextID] = continuation
        continuation.yield(current)
        return nextID
    }

    package mutating func remove(_ id: UInt64) {
        streams.removeValue(forKey: id)
    }

    /// A new watcher's stream: `add` registers its continuation (under the owner's lock, returning
    /// `add(_:current:)`'s id) and `remove` unregisters it once its reader stops or goes away.
    package static func stream(add: (AsyncStream<Value>.Continuation) -> UInt64,
                               remove: @escaping @Sendable (UInt64) -> Void) -> AsyncStream<Value> {
        let (stream, continuation) = AsyncStream.makeStream(of: Value.self)
        let id = add(continuation)
        continuation.onTermination = { _ in remove(id) }
        return stream
    }
}
