import XCTest
@testable import CNNModel

/// FedProx in the training loop: `SGDConfig.proximalMu` adds μ·(w − w₀) to every gradient, w₀
/// the parameters `train` started from. Real training steps: release only (~100× slower in debug).
final class ProximalTrainingReleaseTests: XCTestCase {
    override func setUpWithError() throws {
        #if DEBUG
        throw XCTSkip("release-only: run swift test -c release --filter ReleaseTests")
        #endif
    }

    private func distanceFromStart(mu: Float) throws -> Double {
        let m = try referenceCNN(channels: 1, height: 16, width: 16, classes: 3, seed: 1, threads: 1)
        let start = m.parameters()
        let (x, y) = syntheticBatch(count: 6, c: 1, h: 16, w: 16, classes: 3, seed: 2)
        _ = try train(m, x, y, epochs: 6, batch: 6, sgd: SGDConfig(learningRate: 0.05, momentum: 0, proximalMu: mu))
        return zip(m.parameters(), start).map { Double($0 - $1) * Double($0 - $1) }.reduce(0, +).squareRoot()
    }

    /// With η·μ = 1 each step after the first lands at w₀ − η·g(w): the model cannot drift
    /// further than about one step, while plain SGD keeps moving.
    func testTheProximalTermHoldsTheModelNearTheRoundsStart() throws {
        let free = try distanceFromStart(mu: 0)
        let held = try distanceFromStart(mu: 20)
        XCTAssertGreaterThan(free, 0)
        XCTAssertLessThan(held, free / 2, "free \(free), held \(held)")
    }

    func testNegativeOrNonFiniteMuIsRefused() throws {
        let m = try referenceCNN(channels: 1, height: 16, width: 16, classes: 3, seed: 1, threads: 1)
        let (x, y) = syntheticBatch(count: 2, c: 1, h: 16, w: 16, classes: 3, seed: 2)
        XCTAssertThrowsError(try train(m, x, y, epochs: 1, batch: 2, sgd: SGDConfig(proximalMu: -1)))
        XCTAssertThrowsError(try train(m, x, y, epochs: 1, batch: 2, sgd: SGDConfig(proximalMu: .nan)))
    }
}
