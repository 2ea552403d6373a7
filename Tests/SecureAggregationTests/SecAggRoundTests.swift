// Whole rounds through the in-memory exchange: the unmasked average against plain FedAvg, the masks
// cancelling, and dropouts at every step.
import Testing
@testable import SecureAggregation

struct SecAggRoundTests {
    /// Random updates in [−1.5R, 1.5R] (some clipped) and example counts, some above max_weight.
    static func data(n: Int, length: Int, clip: Double, seed: UInt64) -> (updates: [[Float]], examples: [Int]) {
        var rng = SeededRandom(state: seed)
        let updates = (0..<n).map { _ in (0..<length).map { _ in Float.random(in: Float(-1.5 * clip)...Float(1.5 * clip), using: &rng) } }
        let examples = (0..<n).map { _ in Int.random(in: 1...1500, using: &rng) }
        return (updates, examples)
    }

    /// (n, k, t): sparse ring graphs, the default O(log n) degree, and the complete graph (original SecAgg).
    @Test(arguments: [(5, 4, 3), (12, 6, 4), (20, nil, nil), (9, 8, 5), (30, 10, 7)] as [(Int, Int?, Int?)])
    func unmaskedAverageEqualsPlainFedAvgWithinTheQuantisationBound(n: Int, k: Int?, t: Int?) throws {
        let config = SecAggConfig(numShares: k, reconstructionThreshold: t, clippingRange: 2, maxWeight: 1000)
        let (updates, examples) = Self.data(n: n, length: 257, clip: 2, seed: UInt64(n))
        var rng = SeededRandom(state: 7)
        let report = try SecAggInMemoryExchange.run(config: config, numClients: n, vectorLength: 257, rng: &rng) { i in
            (updates[Int(i)], examples[Int(i)])
        }
        let weights = examples.map { Double(min($0, 1000)) }
        let expected = plainFedAvg(updates, weights: weights, clip: 2)
        let bound = report.result.quantizationErrorBound
        #expect(report.result.weightSum == UInt64(weights.reduce(0, +)))
        #expect(report.result.aggregated == n && report.result.dropped == 0 && report.result.recovered == 0)
        let worst = zip(report.result.average, expected).map { abs(Double($0) - $1) }.max() ?? .infinity
        // Float32 output adds at most one ulp of R to the computed bound.
        #expect(worst <= bound + 4e-7, "max error \(worst) > bound \(bound)")
        // The bound is not vacuous: it is far below the spread of the values.
        #expect(bound < 0.01)
    }

    /// Integer updates with R = 4, Q = 9 quantise exactly (q = x + 4), so the masked vectors minus each
    /// client's self mask must sum to Σ w·q exactly: every pairwise mask cancelled.
    @Test(arguments: [(8, 4), (7, 6)])
    func pairwiseMasksCancelExactly(n: Int, k: Int) throws {
        let config = SecAggConfig(numShares: k, reconstructionThreshold: k / 2 + 1, clippingRange: 4,
                                  quantizationRange: 9, maxWeight: 10)
        var driver = try RoundDriver(config: config, numClients: n, vectorLength: 64)
        try driver.exchangeKeys()
        try driver.shareKeys()
        var updates: [[Float]] = []
        for i in 0..<n {
            var row = [Float](repeating: 0, count: 64)
            for j in 0..<64 { row[j] = Float((j * 7 + i * 3) % 9 - 4) }
            updates.append(row)
        }
        // w·q per client, and the weight appended: what each masked vector hides.
        func weighted(_ i: Int) -> [UInt32] {
            var out = updates[i].map { UInt32($0 + 4) * UInt32(i + 1) }
            out.append(UInt32(i + 1))
            return out
        }
        try driver.maskInputs { i in (updates[Int(i)], Int(i) + 1) }
        var residual = [UInt32](repeating: 0, count: 65)
        for (i, input) in driver.masked {
            var selfMask = [UInt32](repeating: 0, count: 65)
            let seed = driver.clients[i]!.selfMaskSeed
            try MaskStream.apply(key: SecAggKDF.selfMaskKey(seed: seed, round: 1, owner: i), to: &selfMask, subtract: false)
            for j in 0..<65 { residual[j] &+= input.vector[j] &- selfMask[j] }
            // Each client's own vector is masked: it differs from w·q in (almost) every coordinate.
            let plain = weighted(Int(i))
            #expect(zip(input.vector, plain).filter { $0 == $1 }.count < 4)
        }
        var expected = [UInt32](repeating: 0, count: 65)
        for i in 0..<n {
            let w = weighted(i)
            for j in 0..<65 { expected[j] += w[j] }
        }
        #expect(residual == expected)
        let result = try driver.unmask()
        let exact: [Float] = (0..<64).map { j in Float(expected[j]) / Float(expected[64]) - 4 }
        #expect(zip(result.average, exact).allSatisfy { abs($0 - $1) < 1e-5 })
    }

    @Test func pairwiseKeysAgreeAndOppositeStreamsCancel() throws {
        let params = try SecAggConfig(numShares: 2).resolve(numClients: 3)
        let a = try SecAggClient(setup: SecAggSetup(round: 9, clientIndex: 0, numClients: 3, vectorLength: 10, parameters: params))
        let b = try SecAggClient(setup: SecAggSetup(round: 9, clientIndex: 2, numClients: 3, vectorLength: 10, parameters: params))
        let kab = try SecAggKDF.agreedKey(a.maskKey, b.publicKeys.maskKey, purpose: "pairwise-mask", round: 9, 0, 2)
        let kba = try SecAggKDF.agreedKey(b.maskKey, a.publicKeys.maskKey, purpose: "pairwise-mask", round: 9, 2, 0)
        #expect(kab == kba)
        let other = try SecAggKDF.agreedKey(a.maskKey, b.publicKeys.maskKey, purpose: "pairwise-mask", round: 10, 0, 2)
        #expect(kab != other)
        var v = [UInt32](repeating: 0, count: 100_003)
        try MaskStream.apply(key: kab, to: &v, subtract: false)
        #expect(v.filter { $0 == 0 }.count < 3)
        try MaskStream.apply(key: kba, to: &v, subtract: true)
        #expect(v.allSatisfy { $0 == 0 })
    }
}
