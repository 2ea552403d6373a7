import XCTest
@testable import CNNModel
@testable import Tensor

/// Trains `model` on (x, y) and returns the result.
func train(_ model: Network, _ x: [Float], _ y: [Int32], epochs: Int, batch: Int, sgd: SGDConfig = SGDConfig(),
           seed: UInt64 = 1, progress: ((TrainProgress) -> Void)? = nil) throws -> TrainResult {
    try x.withUnsafeBufferPointer { xs in try y.withUnsafeBufferPointer {
        try model.train(images: xs, labels: $0, epochs: epochs, batchSize: batch, sgd: sgd, seed: seed, progress: progress)
    } }
}

/// Training-loop semantics that are cheap enough for debug builds.
final class TrainingTests: XCTestCase {
    func testStepsExamplesAndProgressIncludeThePartialBatch() throws {
        let m = try referenceCNN(channels: 1, height: 16, width: 16, classes: 3, seed: 1, threads: 1)
        let (x, y) = syntheticBatch(count: 5, c: 1, h: 16, w: 16, classes: 3, seed: 2)
        var seen: [TrainProgress] = []
        let r = try train(m, x, y, epochs: 2, batch: 2) { seen.append($0) }
        XCTAssertEqual(r.examples, 10)
        XCTAssertEqual(seen.map(\.step), [0, 1, 2, 0, 1, 2])
        XCTAssertEqual(seen.map(\.epoch), [0, 0, 0, 1, 1, 1])
        XCTAssertEqual(seen.map(\.examplesSeen), [2, 4, 5, 7, 9, 10])
        XCTAssertTrue(seen.allSatisfy { $0.stepsPerEpoch == 3 && $0.loss.isFinite })
        let weighted = (seen.map { $0.loss * Double($0.examplesSeen) }.reduce(0, +))
        XCTAssertTrue(weighted.isFinite)
    }

    func testEvaluateMatchesLogitsAndIgnoresBatchSize() throws {
        let m = try referenceCNN(channels: 3, height: 16, width: 16, classes: 4, seed: 5, threads: 2)
        let (x, y) = syntheticBatch(count: 7, c: 3, h: 16, w: 16, classes: 4, seed: 6)
        let logits = try x.withUnsafeBufferPointer { try m.logits(images: $0, count: 7) }
        XCTAssertEqual(logits.count, 28)
        var correct = 0
        for i in 0..<7 {
            let row = Array(logits[(i * 4)..<(i * 4 + 4)])
            if row.firstIndex(of: row.max() ?? 0) == Int(y[i]) { correct += 1 }
        }
        let eval = { (b: Int) in try x.withUnsafeBufferPointer { xs in try y.withUnsafeBufferPointer {
            try m.evaluate(images: xs, labels: $0, batchSize: b)
        } } }
        let e3 = try eval(3), e256 = try eval(256)
        XCTAssertEqual(e3.examples, 7)
        XCTAssertEqual(e3.accuracy, Double(correct) / 7, accuracy: 1e-12)
        XCTAssertEqual(e3.loss, e256.loss, accuracy: 1e-6)
    }
}

/// Whole-training checks that need release-mode speed.
final class TrainingReleaseTests: XCTestCase {
    override func setUpWithError() throws {
        #if DEBUG
        throw XCTSkip("release-only: run swift test -c release --filter ReleaseTests")
        #endif
    }

    /// A few dozen steps on one fixed batch drive the loss near zero.
    func testOverfitsOneSmallBatch() throws {
        let m = try referenceCNN(channels: 1, height: 28, width: 28, classes: 10, seed: 1, threads: 2)
        // 16 noisy images, each with a bright 6×6 patch at a place that depends on its label.
        var (x, y) = syntheticBatch(count: 16, c: 1, h: 28, w: 28, classes: 10, seed: 9)
        for i in 0..<16 {
            let l = Int(y[i]), top = (l / 4) * 9 + 1, left = (l % 4) * 7
            for r in 0..<784 { x[i * 784 + r] *= 0.3 }
            for r in top..<(top + 6) { for c in left..<(left + 6) { x[i * 784 + r * 28 + c] = 1 } }
        }
        let first = try train(m, x, y, epochs: 1, batch: 16, sgd: SGDConfig(learningRate: 0.02, momentum: 0.9))
        let last = try train(m, x, y, epochs: 59, batch: 16, sgd: SGDConfig(learningRate: 0.02, momentum: 0.9))
        let eval = try x.withUnsafeBufferPointer { xs in try y.withUnsafeBufferPointer {
            try m.evaluate(images: xs, labels: $0)
        } }
        XCTAssertGreaterThan(first.meanLoss, 2.0, "an untrained 10-class net starts near ln 10")
        XCTAssertLessThan(eval.loss, 0.05, "loss after 60 steps on one batch: \(eval.loss)")
        XCTAssertEqual(eval.accuracy, 1.0)
        XCTAssertLessThan(last.meanLoss, first.meanLoss)
    }

    /// Same seeds, same parameters after training; 1 and 2 threads give bit-identical results
    /// (no reduction is split across threads).
    func testTrainingIsDeterministicAcrossRunsAndThreadCounts() throws {
        let (x, y) = syntheticBatch(count: 40, c: 3, h: 32, w: 32, classes: 10, seed: 3)
        var results: [[Float]] = []
        for threads in [1, 2, 2] {
            let m = try referenceCNN(channels: 3, height: 32, width: 32, classes: 10, seed: 4, threads: threads)
            _ = try train(m, x, y, epochs: 2, batch: 16, sgd: SGDConfig(learningRate: 0.02, momentum: 0.9, weightDecay: 1e-4), seed: 5)
            results.append(m.parameters())
        }
        XCTAssertEqual(results[0], results[1], "1 vs 2 threads")
        XCTAssertEqual(results[1], results[2], "two runs, same seeds")
        let m = try referenceCNN(channels: 3, height: 32, width: 32, classes: 10, seed: 4, threads: 2)
        _ = try train(m, x, y, epochs: 2, batch: 16, seed: 6)
        XCTAssertNotEqual(m.parameters(), results[0], "a different shuffle seed changes the result")
    }

    /// After the first step every buffer is reused (the step itself allocates nothing: all
    /// activations, gradients, packing buffers and the batch gather live in the workspace).
    func testTrainingStepsReuseTheWorkspace() throws {
        let m = try referenceCNN(channels: 1, height: 28, width: 28, classes: 10, seed: 1, threads: 2)
        let (x, y) = syntheticBatch(count: 64, c: 1, h: 28, w: 28, classes: 10, seed: 2)
        _ = try train(m, x, y, epochs: 1, batch: 32)
        let ws = try XCTUnwrap(m.workspace)
        let dAct = ws.gradients[1].pointer, gemmWS = m.gemmWorkspace
        _ = try train(m, x, y, epochs: 3, batch: 32)
        XCTAssertTrue(m.workspace === ws, "the workspace must not be reallocated")
        XCTAssertEqual(m.workspace?.gradients[1].pointer, dAct)
        XCTAssertTrue(m.gemmWorkspace === gemmWS, "the GEMM packing buffers must not be reallocated")
        _ = try train(m, x, y, epochs: 1, batch: 16)
        XCTAssertTrue(m.workspace === ws, "a smaller batch reuses the workspace")
    }
}
