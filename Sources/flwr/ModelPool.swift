import CNNModel
import Synchronization

/// A fixed set of CNN instances shared by the clients of one process (`flwr simulate`), so that
/// at most `size` clients train at once: the machine's cores are used and not oversubscribed, and
/// memory holds `size` model workspaces however many clients there are.
final class ModelPool: Sendable {
    private struct State {
        var idle: [CNNBox] = []
        var created = 0
        var waiters: [CheckedContinuation<CNNBox, Never>] = []
    }
    private let state = Mutex(State())
    private let size: Int
    private let make: @Sendable () throws -> CNN

    /// A pool of at most `size` models built on demand by `make`.
    init(size: Int, make: @escaping @Sendable () throws -> CNN) {
        self.size = max(1, size)
        self.make = make
    }

    /// Runs `body` with exclusive use of one model, waiting for a free one if all are busy.
    func withModel<R: Sendable>(_ body: (CNN) throws -> R) async throws -> R {
        let box = try await acquire()
        defer { release(box) }
        return try body(box.model)
    }

    private func acquire() async throws -> CNNBox {
        enum Step { case got(CNNBox), build, wait }
        let step: Step = state.withLock { s in
            if let b = s.idle.popLast() { return .got(b) }
            if s.created < size { s.created += 1; return .build }
            return .wait
        }
        switch step {
        case .got(let b): return b
        case .build:
            do { return CNNBox(model: try make()) } catch {
                state.withLock { $0.created -= 1 }
                throw error
            }
        case .wait:
            return await withCheckedContinuation { cont in
                let ready: CNNBox? = state.withLock { s in
                    if let b = s.idle.popLast() { return b }
                    s.waiters.append(cont)
                    return nil
                }
                if let ready { cont.resume(returning: ready) }
            }
        }
    }

    private func release(_ box: CNNBox) {
        let waiter: CheckedContinuation<CNNBox, Never>? = state.withLock { s in
            if s.waiters.isEmpty { s.idle.append(box); return nil }
            return s.waiters.removeFirst()
        }
        waiter?.resume(returning: box)
    }
}

/// Moves a CNN between tasks; the pool guarantees one user at a time.
final class CNNBox: @unchecked Sendable {
    let model: CNN
    init(model: CNN) { self.model = model }
}
