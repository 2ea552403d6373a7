// One outstanding call per connection, for both transports (the native wire's session handler and
// the Flower port's proxy): the server sends one instruction and waits for the one answer to it.
//
//   idle --begin--> waiting --answer--> idle
//    |                 |  --deadline / cancelled / peer gone--> closed
//    +------close------+--------------------------------------> closed
//
// A second call while one waits is refused; the waiting caller is resumed exactly once (with the
// answer, the deadline's error, or the close's error); an answer after the deadline closed the
// call is dropped and counted. The deadline fires from a timer the transport provides
// (`DeadlineClock`: NIO's event-loop `scheduleTask` on both ports), never from a polling task.
// The type knows no transport: what an answer is, what it must match and which errors a caller
// sees are the adopter's.
import Synchronization

/// A one-shot timer a transport provides.
public protocol DeadlineClock: Sendable {
    /// Runs `fire` once after `delay`, unless the returned deadline is cancelled first.
    func schedule(after delay: Duration, _ fire: @escaping @Sendable () -> Void) -> any ScheduledDeadline
}

/// A scheduled deadline; cancelling one that has fired (or was cancelled) does nothing.
public protocol ScheduledDeadline: Sendable {
    func cancel()
}

/// Why a call was not started.
public enum CallRefusal<Expected: Sendable>: Error, Sendable {
    /// A call is still waiting for its answer (`pending` names what it waits for).
    case busy(pending: Expected)
    /// The connection has ended, for this reason.
    case closed(reason: String)
}

/// What became of an answer handed to `OutstandingCall.deliver`.
public enum Delivery<Expected: Sendable>: Sendable {
    /// It completed the waiting call.
    case taken
    /// A call waits, but for something else (`expected`); the call still waits.
    case mismatch(expected: Expected)
    /// No call was waiting.
    case unsolicited
    /// It came after the call's deadline had closed the connection: dropped and counted.
    case late
    /// The connection had ended (other than by a deadline): dropped.
    case closed
}

extension Delivery: Equatable where Expected: Equatable {}
extension CallRefusal: Equatable where Expected: Equatable {}

/// The one-outstanding-call state of one connection. Thread-safe (a lock around a small state;
/// the waiter is resumed and the deadline cancelled outside it).
public final class OutstandingCall<Expected: Sendable, Answer: Sendable>: Sendable {
    /// Resumed exactly once with the call's outcome.
    public typealias Waiter = @Sendable (Result<Answer, any Error>) -> Void
    /// Told when the core ended the connection itself (a deadline, a cancelled caller), with why
    /// and the error the waiting caller got: the transport closes its connection here.
    public typealias Ended = @Sendable (_ reason: String, _ error: any Error) -> Void

    private struct Waiting {
        let token: UInt64
        let expected: Expected
        let waiter: Waiter
        let expired: @Sendable () -> any Error
        var deadline: (any ScheduledDeadline)?
    }

    private enum State {
        case idle
        case waiting(Waiting)
        /// `error`: what a waiting call got (or would have); `byDeadline`: answers still coming are late.
        case closed(reason: String, error: any Error, byDeadline: Bool)
    }

    private struct Box {
        var state = State.idle
        var nextToken: UInt64 = 0
        var late = 0
    }

    private let box = Mutex(Box())
    private let clock: any DeadlineClock
    private let ended: Ended

    public init(clock: any DeadlineClock, ended: @escaping Ended) {
        self.clock = clock
        self.ended = ended
    }

    /// Answers that arrived after their call's deadline (dropped).
    public var lateAnswers: Int { box.withLock { $0.late } }

    /// Why the connection ended; nil while it is open.
    public var closeReason: String? {
        box.withLock { if case .closed(let reason, _, _) = $0.state { return reason } else { return nil } }
    }

    /// The error the connection ended with (the first `close`'s, the deadline's, or
    /// `CancellationError`); nil while it is open.
    public var closeError: (any Error)? {
        box.withLock { if case .closed(_, let error, _) = $0.state { return error } else { return nil } }
    }

    /// Whether a call waits for its answer.
    public var isWaiting: Bool {
        box.withLock { if case .waiting = $0.state { return true } else { return false } }
    }

    /// Starts a call that waits for `expected` until `deadline` has passed. On success the caller
    /// sends its instruction next (the answer cannot come before it); `waiter` is then resumed
    /// exactly once. On a refusal nothing is kept and `waiter` is never called. `expired` builds
    /// the error of a call whose deadline passed (called under the core's lock: it must not call
    /// back into it); the connection is then closed and `ended` is told.
    public func begin(_ expected: Expected, deadline: Duration, expired: @escaping @Sendable () -> any Error,
                      waiter: @escaping Waiter) -> CallRefusal<Expected>? {
        let started: Result<UInt64, CallRefusal<Expected>> = box.withLock { box in
            switch box.state {
            case .idle:
                box.nextToken &+= 1
                box.state = .waiting(Waiting(token: box.nextToken, expected: expected, waiter: waiter, expired: expired))
                return .success(box.nextToken)
            case .waiting(let w):
                return .failure(.busy(pending: w.expected))
            case .closed(let reason, _, _):
                return .failure(.closed(reason: reason))
            }
        }
        let token: UInt64
        switch started {
        case .failure(let refusal): return refusal
        case .success(let t): token = t
        }
        // Scheduled outside the lock; a deadline that fires before it is attached finds its
        // token and expires the call all the same.
        let timer = clock.schedule(after: deadline) { [weak self] in self?.expire(token) }
        let keep: Bool = box.withLock { box in
            guard case .waiting(var w) = box.state, w.token == token else { return false }
            w.deadline = timer
            box.state = .waiting(w)
            return true
        }
        if !keep { timer.cancel() }
        return nil
    }

    /// Hands an answer to the waiting call if `accepts` its expectation. Nothing else changes
    /// state: on `.mismatch` and `.unsolicited` the adopter decides (both ports close).
    public func deliver(_ answer: Answer, accepts: (Expected) -> Bool = { _ in true }) -> Delivery<Expected> {
        let (taken, delivery): (Waiting?, Delivery<Expected>) = box.withLock { box in
            switch box.state {
            case .waiting(let w) where accepts(w.expected):
                box.state = .idle
                return (w, .taken)
            case .waiting(let w):
                return (nil, .mismatch(expected: w.expected))
            case .idle:
                return (nil, .unsolicited)
            case .closed(_, _, let byDeadline):
                if byDeadline { box.late += 1 }
                return (nil, byDeadline ? .late : .closed)
            }
        }
        if let taken {
            taken.deadline?.cancel()
            taken.waiter(.success(answer))
        }
        return delivery
    }

    /// Ends the connection (the first close wins): a waiting call fails with `error`, later calls
    /// are refused. Returns whether this call closed it. `ended` is not told (the caller is the
    /// transport).
    @discardableResult
    public func close(reason: String, error: any Error) -> Bool {
        guard case .closed(let pending) = finish(reason: reason, error: error) else { return false }
        pending?.deadline?.cancel()
        pending?.waiter(.failure(error))
        return true
    }

    /// Ends the connection if no call waits (a last instruction that expects no answer);
    /// refused while one waits or after the end.
    public func closeIfIdle(reason: String, error: any Error) -> CallRefusal<Expected>? {
        box.withLock { box in
            switch box.state {
            case .idle:
                box.state = .closed(reason: reason, error: error, byDeadline: false)
                return nil
            case .waiting(let w):
                return .busy(pending: w.expected)
            case .closed(let why, _, _):
                return .closed(reason: why)
            }
        }
    }

    /// The caller gave up (its task was cancelled): the waiting call fails with
    /// `CancellationError`, the connection ends (an answer would arrive out of turn) and `ended`
    /// is told.
    public func cancel() {
        let reason = "the call was cancelled"
        guard case .closed(let pending) = finish(reason: reason, error: CancellationError()) else { return }
        pending?.deadline?.cancel()
        pending?.waiter(.failure(CancellationError()))
        ended(reason, CancellationError())
    }

    /// The call's async form: begins the call, runs `send` once it has begun, and returns the
    /// answer; a refusal throws `refused(refusal)`; a cancelled task ends the call (`cancel()`).
    public func call(_ expected: Expected, deadline: Duration, refused: (CallRefusal<Expected>) -> any Error,
                     expired: @escaping @Sendable () -> any Error, send: () -> Void) async throws -> Answer {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Answer, any Error>) in
                if let refusal = begin(expected, deadline: deadline, expired: expired, waiter: { continuation.resume(with: $0) }) {
                    continuation.resume(throwing: refused(refusal))
                } else {
                    send()
                }
            }
        } onCancel: {
            cancel()
        }
    }

    /// The deadline of call `token` passed: if that call still waits, it fails with its
    /// `expired()` error and the connection ends (answers that still come are late).
    private func expire(_ token: UInt64) {
        let taken: (Waiting, any Error)? = box.withLock { box in
            guard case .waiting(let w) = box.state, w.token == token else { return nil }
            let error = w.expired()
            box.state = .closed(reason: "\(error)", error: error, byDeadline: true)
            return (w, error)
        }
        guard let (pending, error) = taken else { return }
        pending.waiter(.failure(error))
        ended("\(error)", error)
    }

    private enum Change {
        case none
        /// Closed now, taking the call that was waiting (if any).
        case closed(Waiting?)
    }

    private func finish(reason: String, error: any Error) -> Change {
        box.withLock { box -> Change in
            switch box.state {
            case .closed:
                return .none
            case .idle:
                box.state = .closed(reason: reason, error: error, byDeadline: false)
                return .closed(nil)
            case .waiting(let w):
                box.state = .closed(reason: reason, error: error, byDeadline: false)
                return .closed(w)
            }
        }
    }
}
