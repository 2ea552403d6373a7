// The one-outstanding-call state machine both transports drive, on a fake clock whose time moves
// only when a test advances it: answer before the deadline, deadline then a late answer, the peer
// gone while a call waits, a second call refused, a cancelled caller, a stale deadline, and
// exactly one resumption when the answer, the deadline and a close race.
import Dispatch
@testable import FlowerCore
import Synchronization
import Testing

/// A clock that fires what is due when `advance` moves it. `honoursCancel: false` fires cancelled
/// deadlines too (a timer whose cancel came too late).
final class ManualClock: DeadlineClock {
    final class Deadline: ScheduledDeadline {
        let due: Duration
        let fire: @Sendable () -> Void
        let cancelled = Atomic<Bool>(false)
        init(due: Duration, fire: @escaping @Sendable () -> Void) { self.due = due; self.fire = fire }
        func cancel() { cancelled.store(true, ordering: .relaxed) }
    }

    private struct State {
        var now = Duration.zero
        var pending: [Deadline] = []
    }
    private let state = Mutex(State())
    let honoursCancel: Bool

    init(honoursCancel: Bool = true) { self.honoursCancel = honoursCancel }

    func schedule(after delay: Duration, _ fire: @escaping @Sendable () -> Void) -> any ScheduledDeadline {
        state.withLock { s in
            let d = Deadline(due: s.now + delay, fire: fire)
            s.pending.append(d)
            return d
        }
    }

    /// Every deadline scheduled so far.
    var scheduled: [Deadline] { state.withLock { $0.pending } }

    func advance(by delta: Duration) {
        let due: [Deadline] = state.withLock { s in
            s.now += delta
            let due = s.pending.filter { $0.due <= s.now }
            s.pending.removeAll { $0.due <= s.now }
            return due
        }
        for d in due where !honoursCancel || !d.cancelled.load(ordering: .relaxed) { d.fire() }
    }
}

enum Kind: String, Sendable, Equatable { case fit, evaluate }

struct Expired: Error, Equatable, CustomStringConvertible {
    let what: String
    var description: String { "no answer to \(what)" }
}
struct Gone: Error, Equatable {}

/// Every outcome a waiter received, and every `ended` notice.
final class Record: Sendable {
    private let outcomes = Mutex<[Result<Int, any Error>]>([])
    private let endings = Mutex<[String]>([])

    var waiter: OutstandingCall<Kind, Int>.Waiter { { r in self.outcomes.withLock { $0.append(r) } } }
    var ended: OutstandingCall<Kind, Int>.Ended { { reason, _ in self.endings.withLock { $0.append(reason) } } }

    var results: [Result<Int, any Error>] { outcomes.withLock { $0 } }
    var answers: [Int] { results.compactMap { try? $0.get() } }
    var errors: [any Error] { results.compactMap { if case .failure(let e) = $0 { return e } else { return nil } } }
    var ends: [String] { endings.withLock { $0 } }
}

@Suite struct OutstandingCallTests {
    let clock = ManualClock()
    let record = Record()
    let core: OutstandingCall<Kind, Int>

    init() { core = OutstandingCall(clock: clock, ended: record.ended) }

    func begin(_ kind: Kind, _ deadline: Duration = .seconds(5), waiter: OutstandingCall<Kind, Int>.Waiter? = nil) -> CallRefusal<Kind>? {
        core.begin(kind, deadline: deadline, expired: { Expired(what: kind.rawValue) }, waiter: waiter ?? record.waiter)
    }

    @Test func answerBeforeTheDeadline() throws {
        #expect(begin(.fit) == nil)
        #expect(core.isWaiting)
        clock.advance(by: .milliseconds(4_999))
        #expect(record.results.isEmpty, "nothing before the deadline")
        #expect(core.deliver(7) == .taken)
        #expect(record.answers == [7])
        #expect(clock.scheduled.allSatisfy { $0.cancelled.load(ordering: .relaxed) }, "the answer cancelled the deadline")
        clock.advance(by: .seconds(60))
        #expect(record.results.count == 1, "resumed exactly once")
        #expect(record.ends.isEmpty)
        #expect(!core.isWaiting)
        #expect(core.closeReason == nil)
        // Idle again: the next call may start, and is answered in turn.
        #expect(begin(.evaluate) == nil)
        #expect(core.deliver(8) == .taken)
        #expect(record.answers == [7, 8])
    }

    @Test func deadlineThenLateAnswers() throws {
        #expect(begin(.fit, .seconds(5)) == nil)
        clock.advance(by: .seconds(5))
        #expect(record.errors.compactMap { $0 as? Expired } == [Expired(what: "fit")])
        #expect(record.ends == ["no answer to fit"], "the transport is told to close its connection")
        #expect(core.closeReason == "no answer to fit")
        #expect(core.closeError as? Expired == Expired(what: "fit"))
        #expect(core.deliver(1) == .late)
        #expect(core.deliver(2) == .late)
        #expect(core.lateAnswers == 2)
        #expect(record.results.count == 1, "late answers resume nothing")
        guard case .closed(let reason)? = begin(.evaluate) else { Issue.record("a call after the deadline was not refused"); return }
        #expect(reason == "no answer to fit")
    }

    @Test func peerGoneWhileWaiting() throws {
        #expect(begin(.fit) == nil)
        #expect(core.close(reason: "the peer hung up", error: Gone()))
        #expect(record.errors.compactMap { $0 as? Gone } == [Gone()])
        #expect(clock.scheduled.allSatisfy { $0.cancelled.load(ordering: .relaxed) })
        #expect(!core.close(reason: "again", error: Expired(what: "x")), "the first close wins")
        #expect(core.closeReason == "the peer hung up")
        clock.advance(by: .seconds(60))
        #expect(record.results.count == 1)
        #expect(record.ends.isEmpty, "a close by the transport is not reported back to it")
        #expect(core.deliver(3) == .closed)
        #expect(core.lateAnswers == 0, "only answers after a deadline count as late")
        #expect(core.closeIfIdle(reason: "finish", error: Gone()) == .closed(reason: "the peer hung up"))
    }

    @Test func secondCallRefusedWhileOneWaits() throws {
        #expect(begin(.fit) == nil)
        let other = Record()
        #expect(begin(.evaluate, waiter: other.waiter) == .busy(pending: .fit))
        #expect(core.closeIfIdle(reason: "finish", error: Gone()) == .busy(pending: .fit))
        #expect(other.results.isEmpty, "a refused call's waiter is never called")
        #expect(clock.scheduled.count == 1, "a refused call arms no deadline")
        #expect(core.deliver(5) == .taken)
        #expect(record.answers == [5])
        #expect(core.closeIfIdle(reason: "finish", error: Gone()) == nil)
        #expect(core.closeReason == "finish")
    }

    @Test func answerMustMatchWhatTheCallWaitsFor() throws {
        #expect(core.deliver(1) == .unsolicited)
        #expect(begin(.fit) == nil)
        #expect(core.deliver(2, accepts: { $0 == .evaluate }) == .mismatch(expected: .fit))
        #expect(core.isWaiting, "a mismatch leaves the call waiting; the adopter decides")
        #expect(record.results.isEmpty)
        #expect(core.deliver(3, accepts: { $0 == .fit }) == .taken)
        #expect(record.answers == [3])
    }

    /// A deadline whose cancel came too late fires after its call was answered: the next call,
    /// now waiting, is not expired by it.
    @Test func staleDeadlineLeavesTheNextCallAlone() throws {
        let clock = ManualClock(honoursCancel: false)
        let record = Record()
        let core = OutstandingCall<Kind, Int>(clock: clock, ended: record.ended)
        #expect(core.begin(.fit, deadline: .seconds(1), expired: { Expired(what: "fit") }, waiter: record.waiter) == nil)
        #expect(core.deliver(1) == .taken)
        #expect(core.begin(.evaluate, deadline: .seconds(10), expired: { Expired(what: "evaluate") }, waiter: record.waiter) == nil)
        clock.advance(by: .seconds(1))
        #expect(core.isWaiting, "the first call's deadline fired for nothing")
        #expect(record.ends.isEmpty)
        clock.advance(by: .seconds(9))
        #expect(record.errors.compactMap { $0 as? Expired } == [Expired(what: "evaluate")])
        #expect(record.answers == [1])
    }

    /// `core.call` in a task, returned once it has sent its instruction.
    func startedCall(_ kind: Kind) async -> Task<Int, any Error> {
        let (began, signal) = AsyncStream.makeStream(of: Void.self)
        let core = self.core
        let task = Task {
            try await core.call(kind, deadline: .seconds(5), refused: { $0 }, expired: { Expired(what: kind.rawValue) }) { signal.yield() }
        }
        for await _ in began { break }
        return task
    }

    @Test func asyncCallReturnsTheAnswer() async throws {
        let task = await startedCall(.fit)
        #expect(core.deliver(42) == .taken)
        #expect(try await task.value == 42)
    }

    @Test func cancelledCallerEndsTheCall() async throws {
        let task = await startedCall(.fit)
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
        #expect(record.ends == ["the call was cancelled"], "the transport is told to close its connection")
        #expect(core.closeReason == "the call was cancelled")
        #expect(clock.scheduled.allSatisfy { $0.cancelled.load(ordering: .relaxed) })
        #expect(core.deliver(1) == .closed)
        // A call made after the end is refused with the adopter's error.
        await #expect(throws: CallRefusal<Kind>.self) {
            try await core.call(.evaluate, deadline: .seconds(5), refused: { $0 }, expired: { Expired(what: "evaluate") }) {
                Issue.record("a refused call sent its instruction")
            }
        }
    }

    /// The answer, the deadline and a close race from three threads, many times: each call's
    /// waiter is resumed exactly once, and the core ends closed or idle consistently.
    @Test func exactlyOneResumptionUnderRaces() throws {
        for round in 0..<2_000 {
            let clock = ManualClock()
            let record = Record()
            let core = OutstandingCall<Kind, Int>(clock: clock, ended: record.ended)
            #expect(core.begin(.fit, deadline: .seconds(1), expired: { Expired(what: "fit") }, waiter: record.waiter) == nil)
            let delivered = Mutex<Delivery<Kind>?>(nil)
            DispatchQueue.concurrentPerform(iterations: 3) { i in
                switch (i + round) % 3 {
                case 0: delivered.withLock { $0 = core.deliver(round) }
                case 1: clock.advance(by: .seconds(1))
                default: core.close(reason: "gone", error: Gone())
                }
            }
            #expect(record.results.count == 1, "round \(round): \(record.results.count) resumptions")
            let taken = delivered.withLock { $0 } == .taken
            #expect(taken == (record.answers == [round]), "round \(round)")
            #expect(core.closeReason != nil, "round \(round): the close always lands")
        }
    }
}
