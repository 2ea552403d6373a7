// In-process cost of a SecAgg+ round at the README model's size (390,410 floats): time per phase and
// payload bytes per client, for the client counts in FLWR_SECAGG_BENCH (e.g. "10,100,1000"). Run with
//   FLWR_SECAGG_BENCH=10,100,1000 swift test -c release --filter SecAggBenchmarkReleaseTests
// The protocol core only: no wire, no training; the result is still checked against plain FedAvg.
import Foundation
import Testing
@testable import SecureAggregation

struct SecAggBenchmarkReleaseTests {
    static let counts: [Int] = (ProcessInfo.processInfo.environment["FLWR_SECAGG_BENCH"] ?? "")
        .split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }

    @Test(.enabled(if: !counts.isEmpty, "set FLWR_SECAGG_BENCH=10,100,1000 to run"))
    func roundCostPerPhase() throws {
        let length = 390_410
        print("SecAgg+ protocol core (no wire), model \(length) floats; plain FedAvg upload \(4 * length) B per client")
        print("   n    k  t  dropped | phase        client ms/client  server ms   up B/client  down B/client")
        for n in Self.counts {
            for dropFraction in [0.0, 0.05] {
                let drop = Set((0..<UInt32(n)).filter { Double($0 % 20) < dropFraction * 20 })
                var reference = [Double](repeating: 0, count: length)
                var weightSum = 0.0
                // Plain FedAvg's server work on the same updates (a weighted sum into Double), for scale.
                var plainSeconds = 0.0
                let clock = ContinuousClock()
                var rng = SeededRandom(state: UInt64(n))
                let config = SecAggConfig(clippingRange: 1)
                let report = try SecAggInMemoryExchange.run(
                    config: config, numClients: n, vectorLength: length,
                    dropouts: SecAggDropouts(beforeMaskedInput: drop), rng: &rng
                ) { i in
                    var g = SeededRandom(state: UInt64(i) &* 7919)
                    let values = (0..<length).map { _ in Float.random(in: -0.1...0.1, using: &g) }
                    let examples = 100 + Int(i % 7) * 50
                    guard !drop.contains(i) else { return (values, examples) }
                    weightSum += Double(examples)
                    let start = clock.now
                    let w = Double(examples)
                    reference.withUnsafeMutableBufferPointer { r in
                        values.withUnsafeBufferPointer { v in for j in 0..<length { r[j] += w * Double(v[j]) } }
                    }
                    let d = clock.now - start
                    plainSeconds += Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
                    return (values, examples)
                }
                let worst = zip(report.result.average, reference).map { abs(Double($0) - $1 / weightSum) }.max() ?? 1
                #expect(worst <= report.result.quantizationErrorBound + 1e-6)
                let p = try config.resolve(numClients: n)
                for phase in SecAggPhase.allCases {
                    guard let c = report.phases[phase] else { continue }
                    let per = max(c.clients, 1)
                    let name = phase.rawValue.padding(toLength: 12, withPad: " ", startingAt: 0)
                    print(String(format: "%5d %4d %2d %5d    | ", n, p.numShares, p.reconstructionThreshold, drop.count) + name
                          + String(format: " %10.2f %12.1f %12d %12d", 1000 * c.clientSeconds / Double(per),
                                   1000 * c.serverSeconds, c.uploadBytes / per, c.downloadBytes / per))
                }
                let up = report.phases.values.reduce(0) { $0 + $1.uploadBytes / max($1.clients, 1) }
                let serverTotal = report.phases.values.reduce(0) { $0 + $1.serverSeconds }
                print(String(format: "      upload per surviving client %d B = %.4f× plain FedAvg; server total %.1f ms vs plain FedAvg sum %.1f ms; recovered %d; max error %.2e (bound %.2e)",
                             up, Double(up) / Double(4 * length), 1000 * serverTotal, 1000 * plainSeconds,
                             report.result.recovered, worst, report.result.quantizationErrorBound))
            }
        }
    }
}
