// `flwr client --slowdown F`: each fit's answer is held back (F − 1) × the fit's measured time,
// on a clock and sleep the test drives (no wall-clock assertion); evaluation is not slowed.
import FlowerCore
@testable import FlowerLearning
import Synchronization
import XCTest

final class SlowedClientTests: XCTestCase {
    /// A fake clock: `now` reads it, the inner client's fit advances it by `fitTakes`.
    private final class Clock: Sendable {
        let instant = Mutex(ContinuousClock.now)
        let slept = Mutex<[Duration]>([])
        func advance(_ d: Duration) { instant.withLock { $0 = $0.advanced(by: d) } }
    }

    private struct Inner: Client {
        let clock: Clock
        let fitTakes: Duration
        func getParameters(_ ins: GetParametersIns) async throws -> ParametersRes { ParametersRes(parameters: Parameters()) }
        func fit(_ ins: FitIns) async throws -> FitRes {
            clock.advance(fitTakes)
            return FitRes(round: ins.round, parameters: ins.parameters, numExamples: 7)
        }
        func evaluate(_ ins: EvaluateIns) async throws -> EvaluateRes {
            clock.advance(fitTakes)
            return EvaluateRes(round: ins.round, loss: 0.5, numExamples: 3)
        }
    }

    private func slowed(_ factor: Double, fitTakes: Duration, clock: Clock) -> SlowedClient {
        SlowedClient(Inner(clock: clock, fitTakes: fitTakes), factor: factor,
                     now: { clock.instant.withLock { $0 } },
                     sleep: { d in clock.slept.withLock { $0.append(d) } })
    }

    func testAFitIsHeldBackFactorMinusOneTimesItsMeasuredDuration() async throws {
        let clock = Clock()
        let client = slowed(4, fitTakes: .milliseconds(1500), clock: clock)
        let res = try await client.fit(FitIns(round: 3, parameters: Parameters()))
        XCTAssertEqual(res.numExamples, 7, "the inner client's answer is returned unchanged")
        XCTAssertEqual(res.round, 3)
        XCTAssertEqual(clock.slept.withLock { $0 }, [.milliseconds(4500)], "(4 − 1) × 1.5 s")
        _ = try await client.fit(FitIns(round: 4, parameters: Parameters()))
        XCTAssertEqual(clock.slept.withLock { $0 }, [.milliseconds(4500), .milliseconds(4500)], "every fit, not only the first")
    }

    func testFactorOneAndEvaluationAreNotDelayed() async throws {
        let clock = Clock()
        _ = try await slowed(1, fitTakes: .seconds(2), clock: clock).fit(FitIns(round: 1, parameters: Parameters()))
        let eval = try await slowed(10, fitTakes: .seconds(2), clock: clock).evaluate(EvaluateIns(round: 1, parameters: Parameters()))
        XCTAssertEqual(eval.loss, 0.5)
        XCTAssertEqual(clock.slept.withLock { $0 }, [], "factor 1 and evaluation never sleep")
        XCTAssertEqual(SlowedClient.delay(afterFit: .milliseconds(200), factor: 2.5), .milliseconds(300))
    }

    func testTheFactorMustBeAtLeastOne() {
        for bad in [0.5, 0, -2, .infinity, .nan] {
            XCTAssertNotNil(SlowedClient.problem(factor: bad), "\(bad)")
        }
        XCTAssertNil(SlowedClient.problem(factor: 1))
        XCTAssertTrue(SlowedClient.problem(factor: 0.5)?.contains("--slowdown must be") ?? false)
    }

    /// The real sleep is cancellable: a cancelled fit (SIGTERM) ends with an error instead of
    /// finishing the wait. (The real sleep passed in below is the thing tested.)
    func testACancelledWaitEndsTheFit() async throws {
        let clock = Clock()
        let client = SlowedClient(Inner(clock: clock, fitTakes: .seconds(1)), factor: 1_000_000,
                                  now: { clock.instant.withLock { $0 } }, sleep: { try await Task.sleep(for: $0) })
        let task = Task { try await client.fit(FitIns(round: 1, parameters: Parameters())) }
        task.cancel()
        do {
            _ = try await task.value
            XCTFail("a cancelled fit waited its ~11.6 days out")
        } catch {
            XCTAssertTrue(error is CancellationError, "\(error)")
        }
    }
}
