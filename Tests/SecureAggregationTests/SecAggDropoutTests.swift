// Dropouts at every step: 1, k − t and k − t + 1 clients. Up to k − t neighbours of one client may
// drop after the graph is drawn and the round completes; one more and it fails, unmasking nobody.
import Testing
@testable import SecureAggregation

struct SecAggDropoutTests {
    enum Step: String, CaseIterable { case shares, maskedInput, unmasking }

    static let n = 12, k = 6, t = 4, length = 33
    static let config = SecAggConfig(numShares: k, reconstructionThreshold: t, clippingRange: 1, maxWeight: 100)
    static let victim: UInt32 = 5

    static func update(_ i: UInt32) -> ([Float], Int) {
        ((0..<length).map { Float(($0 + Int(i) * 5) % 11) / 5 - 1 }, 10 + Int(i))
    }

    /// The clients whose masked input is in the sum, and the expected weighted average over them.
    static func expectedAverage(over survivors: [UInt32]) -> [Double] {
        plainFedAvg(survivors.map { update($0).0 }, weights: survivors.map { Double(update($0).1) }, clip: 1)
    }

    /// Drops `count` of the victim's neighbours at `step`; completes iff count ≤ k − t.
    @Test(arguments: Step.allCases, [1, k - t, k - t + 1])
    func droppingNeighboursOfOneClient(step: Step, count: Int) throws {
        var d = try RoundDriver(config: Self.config, numClients: Self.n, vectorLength: Self.length)
        try d.exchangeKeys()
        let drop = Set(d.neighbours(of: Self.victim).prefix(count))
        #expect(drop.count == count)
        let fails = count > Self.k - Self.t
        do {
            try d.shareKeys(drop: step == .shares ? drop : [])
            try d.maskInputs(drop: step == .maskedInput ? drop : [], update: Self.update)
            let result = try d.unmask(drop: step == .unmasking ? drop : [])
            #expect(!fails, "the round completed with \(count) of client \(Self.victim)'s neighbours dropped")
            let survivors = (0..<UInt32(Self.n)).filter { step == .unmasking || !drop.contains($0) }
            let expected = Self.expectedAverage(over: survivors)
            let worst = zip(result.average, expected).map { abs(Double($0) - $1) }.max() ?? .infinity
            #expect(worst <= result.quantizationErrorBound + 1e-6)
            #expect(result.aggregated == survivors.count)
            #expect(result.recovered == (step == .maskedInput ? count : 0))
        } catch let error as SecAggError {
            #expect(fails, "unexpected failure: \(error)")
            guard case .tooFewHolders(_, _, let holders, let threshold) = error else {
                Issue.record("expected tooFewHolders, got \(error)")
                return
            }
            #expect(holders < threshold)
            // Failed for good: no unmask requests were sent (or no result computed), nothing later is taken.
            #expect(d.server.phase == .failed)
            if step != .unmasking { #expect(d.requests.isEmpty) }
            #expect(throws: SecAggError.self) { _ = try d.server.finish() }
            #expect(d.server.maskedSum.isEmpty && d.server.seedShares.isEmpty)
        }
    }

    /// Before the graph is drawn a dropout only shrinks the round: 1, k − t and k − t + 1 missing keys
    /// all complete (the graph is drawn over those who answered). Fewer than t + 1 left fails.
    @Test(arguments: [1, k - t, k - t + 1])
    func droppingBeforeKeys(count: Int) throws {
        let drop = Set((0..<UInt32(count)).map { $0 * 2 })
        var rng = SeededRandom(state: 3)
        let report = try SecAggInMemoryExchange.run(config: Self.config, numClients: Self.n, vectorLength: Self.length,
                                                    dropouts: SecAggDropouts(beforeKeys: drop), rng: &rng, update: Self.update)
        let survivors = (0..<UInt32(Self.n)).filter { !drop.contains($0) }
        let worst = zip(report.result.average, Self.expectedAverage(over: survivors)).map { abs(Double($0) - $1) }.max() ?? 1
        #expect(worst <= report.result.quantizationErrorBound + 1e-6)
        #expect(report.result.dropped == count)
    }

    @Test func tooFewClientsForTheThresholdFailsAtTheGraph() throws {
        var rng = SeededRandom(state: 3)
        #expect(throws: SecAggError.tooFewClients(phase: "key advertisement", remaining: 4, needed: 5)) {
            _ = try SecAggInMemoryExchange.run(config: Self.config, numClients: Self.n, vectorLength: Self.length,
                                               dropouts: SecAggDropouts(beforeKeys: Set(4..<12)), rng: &rng, update: Self.update)
        }
    }

    /// Dropouts at several steps at once in a bigger round, recovered from as long as every client keeps t holders.
    @Test func mixedDropoutsInTheCompleteGraph() throws {
        let config = SecAggConfig(numShares: 9, reconstructionThreshold: 5, clippingRange: 1, maxWeight: 100)
        var rng = SeededRandom(state: 11)
        let dropouts = SecAggDropouts(beforeKeys: [0], beforeShares: [1], beforeMaskedInput: [2], beforeUnmasking: [3])
        let report = try SecAggInMemoryExchange.run(config: config, numClients: 10, vectorLength: Self.length,
                                                    dropouts: dropouts, rng: &rng, update: Self.update)
        let survivors: [UInt32] = [3, 4, 5, 6, 7, 8, 9]
        let worst = zip(report.result.average, Self.expectedAverage(over: survivors)).map { abs(Double($0) - $1) }.max() ?? 1
        #expect(worst <= report.result.quantizationErrorBound + 1e-6)
        #expect(report.result.aggregated == 7 && report.result.dropped == 3 && report.result.recovered == 1)
    }
}
