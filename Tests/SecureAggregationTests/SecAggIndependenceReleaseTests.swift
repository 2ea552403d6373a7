// Each masked vector the server holds is statistically independent of the client's update: over 10^6
// coordinates its correlation with the update is within noise (|r| < 5/√N), while the same vector
// before masking correlates almost perfectly (the check can fail).
import Testing
@testable import SecureAggregation

struct SecAggIndependenceReleaseTests {
    static func correlation(_ a: [Double], _ b: [Double]) -> Double {
        let n = Double(a.count)
        let ma = a.reduce(0, +) / n, mb = b.reduce(0, +) / n
        var sab = 0.0, saa = 0.0, sbb = 0.0
        for i in a.indices {
            let da = a[i] - ma, db = b[i] - mb
            sab += da * db
            saa += da * da
            sbb += db * db
        }
        return sab / (saa * sbb).squareRoot()
    }

    @Test func maskedVectorsAreUncorrelatedWithTheUpdates() throws {
        let length = 1_000_000, n = 4
        let config = SecAggConfig(numShares: 2, reconstructionThreshold: 2, clippingRange: 1, maxWeight: 100)
        var rng = SeededRandom(state: 5)
        // Updates with structure: a ramp plus noise, different per client.
        let updates: [[Float]] = (0..<n).map { c in
            (0..<length).map { i in Float(i % 1000) / 1000 - 0.5 + Float(c) * 0.1 + Float.random(in: -0.2...0.2, using: &rng) }
        }
        var masked: [UInt32: [UInt32]] = [:]
        let report = try SecAggInMemoryExchange.run(config: config, numClients: n, vectorLength: length, rng: &rng,
                                                    observe: { masked[$0.sender] = $0.vector }) { i in (updates[Int(i)], 10) }
        #expect(masked.count == n)
        let noise = 5 / Double(length).squareRoot()
        let quantizer = SecAggQuantizer(parameters: try config.resolve(numClients: n))
        for (i, vector) in masked {
            let x = updates[Int(i)].map(Double.init)
            let r = Self.correlation(x, vector[..<length].map(Double.init))
            #expect(abs(r) < noise, "client \(i): correlation \(r) with its update")
            // Uniform over Z_{2^32}: mean 2^31 ± 5σ (σ = 2^32/√(12N)).
            let mean = vector[..<length].reduce(0.0) { $0 + Double($1) } / Double(length)
            #expect(abs(mean - 0x1p31) < 5 * 0x1p32 / (12 * Double(length)).squareRoot())
            // Control: the unmasked quantised update is almost the update itself.
            let plain = updates[Int(i)].map { Double(quantizer.quantize($0, uniform: 0x8000_0000)) }
            #expect(Self.correlation(x, plain) > 0.99)
        }
        #expect(report.result.aggregated == n)
    }
}
