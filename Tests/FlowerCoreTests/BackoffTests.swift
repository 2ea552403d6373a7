import FlowerCore
import XCTest

final class BackoffTests: XCTestCase {
    private func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    }

    func testWithoutJitterDelaysDoubleUpToTheCap() {
        var b = ReconnectBackoff(initialDelay: .milliseconds(100), multiplier: 2, maxDelay: .seconds(1), jitter: 0, seed: 1)
        let got = (0 ..< 6).map { _ in seconds(b.nextDelay()) }
        XCTAssertEqual(got, [0.1, 0.2, 0.4, 0.8, 1, 1])
        XCTAssertEqual(b.attempts, 6)
        b.reset()
        XCTAssertEqual(seconds(b.nextDelay()), 0.1)
    }

    func testJitterStaysWithinItsFractionAndIsReproducibleBySeed() {
        func run(seed: UInt64) -> [Double] {
            var b = ReconnectBackoff(initialDelay: .seconds(1), multiplier: 2, maxDelay: .seconds(8), jitter: 0.5, seed: seed)
            return (0 ..< 50).map { _ in seconds(b.nextDelay()) }
        }
        let a = run(seed: 7)
        XCTAssertEqual(a, run(seed: 7))
        XCTAssertNotEqual(a, run(seed: 8))
        for (k, d) in a.enumerated() {
            let base = min(8, pow(2, Double(k)))
            XCTAssertGreaterThan(d, base * 0.5 - 1e-9, "attempt \(k)")
            XCTAssertLessThanOrEqual(d, base + 1e-9, "attempt \(k)")
        }
    }

    func testHugeAttemptCountsSaturateInsteadOfOverflowing() {
        var b = ReconnectBackoff(initialDelay: .seconds(1), multiplier: 10, maxDelay: .seconds(30), jitter: 0, seed: 0)
        for _ in 0 ..< 2000 { _ = b.nextDelay() }
        XCTAssertEqual(seconds(b.nextDelay()), 30)
    }
}
