// LogThrottle: repeated warnings become one line per interval with a count; a fake clock, no sleeps.
@testable import FlowerCore
import TestSupport
import Logging
import Synchronization
import Testing

/// A clock the test advances by hand.
final class FakeClock: Sendable {
    private let t = Mutex<Duration>(.zero)
    func advance(_ d: Duration) { t.withLock { $0 += d } }
    var now: @Sendable () -> Duration { { self.t.withLock { $0 } } }
}

struct LogThrottleTests {
    @Test("a flood of 7,020 refusals in 45 s makes 5 lines, each with its count")
    func floodBecomesOneLinePerInterval() {
        let store = LogCapture(), clock = FakeClock()
        let throttle = LogThrottle(logger: store.logger, interval: .seconds(10), now: clock.now)
        var written = 0
        for i in 0 ..< 7_020 {  // one every 6.41 ms: 45 s
            if throttle.warning(key: "refusing connection", "refusing connection from 10.0.0.\(i % 250): 4096 connections already open") { written += 1 }
            clock.advance(.microseconds(6_410))
        }
        let lines = store.lines.map(\.message)
        #expect(written == 5 && lines.count == 5, "\(lines)")
        #expect(lines[0] == "refusing connection from 10.0.0.0: 4096 connections already open")
        // The second line stands for the 1,560 suppressed in the first 10 s (10 s / 6.41 ms).
        #expect(lines[1].hasSuffix("(1560 more like this in the last 10 s)"), "\(lines[1])")
        #expect(store.lines.allSatisfy { $0.level == .warning })
        // After the flood stops, flush reports the tail once the interval has passed.
        clock.advance(.seconds(10))
        #expect(throttle.flush() == 1)
        let tail = store.lines.last?.message ?? ""
        #expect(tail.contains("more like this in the last") && tail.contains(": refusing connection from"), "\(tail)")
        // Every occurrence is accounted for: logged lines + the counts they carry.
        func count(_ line: String) -> Int {
            if line.hasSuffix(" s)"), let open = line.lastIndex(of: "(") {
                let inner = line[line.index(after: open)...]
                return Int(inner.prefix { $0.isNumber }) ?? 0
            }
            return Int(line.prefix { $0.isNumber }) ?? 0
        }
        let counted = store.lines.map(\.message).map(count).reduce(0, +)
        #expect(counted + 5 == 7_020, "\(store.lines.map(\.message))")
    }

    @Test("keys are independent; a quiet key logs every time")
    func keysAreIndependent() {
        let store = LogCapture(), clock = FakeClock()
        let throttle = LogThrottle(logger: store.logger, interval: .seconds(10), now: clock.now)
        #expect(throttle.warning(key: "timeout", "client a timed out"))
        #expect(throttle.warning(key: "refused", "refused b"))
        #expect(!throttle.warning(key: "timeout", "client c timed out"))
        clock.advance(.seconds(11))
        #expect(throttle.warning(key: "refused", "refused d"))  // nothing suppressed: no count
        #expect(store.lines.map(\.message) == ["client a timed out", "refused b", "refused d"])
        #expect(throttle.flush() == 1)
        #expect(store.lines.last?.message == "1 more like this in the last 11 s: client c timed out")
        #expect(throttle.flush() == 0, "flushed keys are forgotten")
        #expect(throttle.log(.info, key: "timeout", "client e timed out"))
    }

    @Test("flush before the interval ends writes nothing; the count waits")
    func flushWaitsForTheInterval() {
        let store = LogCapture(), clock = FakeClock()
        let throttle = LogThrottle(logger: store.logger, interval: .seconds(5), now: clock.now)
        throttle.warning(key: "k", "one")
        throttle.warning(key: "k", "two")
        clock.advance(.milliseconds(2_500))
        #expect(throttle.flush() == 0)
        clock.advance(.milliseconds(2_500))
        #expect(throttle.flush() == 1)
        #expect(store.lines.map(\.message) == ["one", "1 more like this in the last 5 s: two"])
    }

    @Test("the key table is bounded: new keys past the cap share one entry")
    func keyTableIsBounded() {
        let store = LogCapture(), clock = FakeClock()
        let throttle = LogThrottle(logger: store.logger, interval: .seconds(10), maxKeys: 3, now: clock.now)
        for i in 0 ..< 100 { throttle.warning(key: "key\(i)", "event \(i)") }
        #expect(store.lines.count == 3 + 1, "\(store.lines.map(\.message))")  // 3 own keys, then "(other)" once
        clock.advance(.seconds(10))
        #expect(throttle.flush() == 1)
        #expect(store.lines.last?.message == "96 more like this in the last 10 s: event 99")
    }
}
