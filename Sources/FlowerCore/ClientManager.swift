import Synchronization

/// A `ClientManager` the round loop can wait on and sample from (Flower's `ClientManager`:
/// `num_available`, `all`, `wait_for`, `sample`).
public protocol SamplingClientManager: ClientManager {
    /// Every connected client, sorted by identity (a stable order for seeded sampling).
    func all() -> [any ClientProxy]
    /// Waits until at least `count` clients are connected; false when `timeout` passes first
    /// or the waiting task is cancelled.
    func waitFor(count: Int, timeout: Duration) async -> Bool
    /// Up to `count` distinct connected clients, chosen uniformly by `generator`.
    func sample<G: RandomNumberGenerator>(count: Int, using generator: inout G) -> [any ClientProxy]
}

extension SamplingClientManager {
    /// Up to `count` distinct clients: a partial Fisher–Yates shuffle of `all()` (id-sorted).
    public func sample<G: RandomNumberGenerator>(count: Int, using generator: inout G) -> [any ClientProxy] {
        var pool = all()
        let k = max(0, min(count, pool.count))
        for i in 0 ..< k {
            let j = Int.random(in: i ..< pool.count, using: &generator)
            pool.swapAt(i, j)
        }
        return Array(pool.prefix(k))
    }

    /// Up to `count` distinct clients chosen by a generator seeded with `seed`.
    public func sample(count: Int, seed: UInt64) -> [any ClientProxy] {
        var g = SplitMix64(seed: seed)
        return sample(count: count, using: &g)
    }
}

/// How a strategy draws a round's training clients.
public enum ClientSampling: Sendable, Equatable, CustomStringConvertible {
    /// A fixed number of distinct clients, uniformly without replacement (Flower's sampling).
    case uniform
    /// Every connected client independently with probability `rate` (Poisson sampling): a round
    /// has Binomial(N, rate) clients, rate·N on average. What the DP accountants assume.
    case poisson(rate: Double)

    public var description: String {
        switch self {
        case .uniform: return "uniform"
        case .poisson(let rate): return "poisson (q = \(rate))"
        }
    }
}

extension SamplingClientManager {
    /// Every client of `all()` independently with probability `rate` (identity order).
    public func poissonSample<G: RandomNumberGenerator>(rate: Double, using generator: inout G) -> [any ClientProxy] {
        all().filter { _ in Double.random(in: 0 ..< 1, using: &generator) < rate }
    }
}

/// The registry of connected clients kept in memory (Flower's `SimpleClientManager`); thread-safe.
public final class InMemoryClientManager: SamplingClientManager {
    private struct Waiter {
        let count: Int
        let continuation: CheckedContinuation<Bool, Never>
        let timer: Task<Void, Never>
    }

    private struct State {
        var clients: [String: any ClientProxy] = [:]
        var waiters: [UInt64: Waiter] = [:]
        /// Waiters whose timeout or cancellation fired before they were parked.
        var expired: Set<UInt64> = []
        var nextWaiter: UInt64 = 0
        /// `clients` sorted by identity, kept until the registry changes (`all()` is called at
        /// least once a round, and sorting a million virtual clients costs seconds).
        var sorted: [any ClientProxy]?
        /// Bumped on every change of `clients`, so a sort made outside the lock is only kept
        /// when nothing changed meanwhile.
        var version: UInt64 = 0

        mutating func changed() {
            sorted = nil
            version &+= 1
        }
    }

    private let state = Mutex(State())
    /// The most clients held at once; nil for no limit.
    public let maxClients: Int?

    /// An empty registry that refuses clients beyond `maxClients` (nil: no limit).
    public init(maxClients: Int? = nil) {
        self.maxClients = maxClients
    }

    /// Adds a client unless its identity is taken or the registry is full; wakes satisfied waiters.
    public func register(_ client: any ClientProxy) -> Result<Void, RegistrationRefusal> {
        let (result, woken): (Result<Void, RegistrationRefusal>, [Waiter]) = state.withLock { s in
            if s.clients[client.id] != nil { return (.failure(.duplicateIdentity(client.id)), []) }
            if let maxClients, s.clients.count >= maxClients { return (.failure(.serverFull(max: maxClients)), []) }
            s.clients[client.id] = client
            s.changed()
            let n = s.clients.count
            let ready = s.waiters.filter { $0.value.count <= n }
            for key in ready.keys { s.waiters.removeValue(forKey: key) }
            return (.success(()), Array(ready.values))
        }
        for w in woken {
            w.timer.cancel()
            w.continuation.resume(returning: true)
        }
        return result
    }

    /// Removes the client with this identity (no-op when absent).
    public func unregister(id: String) {
        state.withLock { s in
            if s.clients.removeValue(forKey: id) != nil { s.changed() }
        }
    }

    /// Removes exactly this client object (no-op when another holds its identity now).
    public func unregister(_ client: any ClientProxy) {
        state.withLock { s in
            if let current = s.clients[client.id], current === client {
                s.clients.removeValue(forKey: client.id)
                s.changed()
            }
        }
    }

    /// Registers `client` in place of the one with its identity; returns the displaced one.
    public func replace(with client: any ClientProxy) -> (any ClientProxy)? {
        let (old, woken): ((any ClientProxy)?, [Waiter]) = state.withLock { s in
            let old = s.clients.updateValue(client, forKey: client.id)
            s.changed()
            let n = s.clients.count
            let ready = s.waiters.filter { $0.value.count <= n }
            for key in ready.keys { s.waiters.removeValue(forKey: key) }
            return (old, Array(ready.values))
        }
        for w in woken {
            w.timer.cancel()
            w.continuation.resume(returning: true)
        }
        return old
    }

    /// Number of clients connected now.
    public var count: Int { state.withLock { $0.clients.count } }

    /// Every connected client, sorted by identity. Sorted once per change of the registry (by the
    /// dictionary's keys, which are the identities), then served from the cached order.
    public func all() -> [any ClientProxy] {
        let (cached, entries, version): ([any ClientProxy]?, [(key: String, value: any ClientProxy)], UInt64) = state.withLock { s in
            if let sorted = s.sorted { return (sorted, [], s.version) }
            return (nil, Array(s.clients), s.version)
        }
        if let cached { return cached }
        let sorted = entries.sorted { $0.key < $1.key }.map(\.value)
        state.withLock { s in
            if s.version == version { s.sorted = sorted }
        }
        return sorted
    }

    /// Waits until at least `count` clients are connected, at most `timeout`.
    public func waitFor(count: Int, timeout: Duration) async -> Bool {
        let id: UInt64? = state.withLock { s in
            if s.clients.count >= count { return nil }
            s.nextWaiter += 1
            return s.nextWaiter
        }
        guard let id else { return true }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                let timer = Task { [weak self] in
                    do { try await Task.sleep(for: timeout) } catch { return }
                    self?.expire(id)
                }
                let immediate: Bool? = state.withLock { s in
                    if s.expired.remove(id) != nil { return false }
                    if s.clients.count >= count { return true }
                    s.waiters[id] = Waiter(count: count, continuation: continuation, timer: timer)
                    return nil
                }
                if let immediate {
                    timer.cancel()
                    continuation.resume(returning: immediate)
                }
            }
        } onCancel: {
            expire(id)
        }
    }

    /// Resumes waiter `id` with false, or marks it expired if it is not parked yet.
    private func expire(_ id: UInt64) {
        let waiter: Waiter? = state.withLock { s in
            if let w = s.waiters.removeValue(forKey: id) { return w }
            s.expired.insert(id)
            return nil
        }
        guard let waiter else { return }
        waiter.timer.cancel()
        waiter.continuation.resume(returning: false)
    }
}
