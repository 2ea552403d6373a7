// Every peer-supplied number is bounded before use: Int64.max and 10^7 where a count, an index, a
// length or a parameter reaches arithmetic, a loop or an allocation.
import Testing
@testable import SecureAggregation

struct SecAggBoundsTests {
    static let params = SecAggParameters(numShares: 4, reconstructionThreshold: 3, clippingRange: 1,
                                         quantizationRange: 1 << 10, modulusRange: 1 << 32, maxWeight: 100)

    static func setup(_ p: SecAggParameters = params, n: UInt32 = 8, index: UInt32 = 0, length: UInt64 = 16) -> SecAggSetup {
        SecAggSetup(round: 1, clientIndex: index, numClients: n, vectorLength: length, parameters: p)
    }

    static func with(_ change: (inout SecAggParameters) -> Void) -> SecAggParameters {
        var p = params
        change(&p)
        return p
    }

    @Test(arguments: [
        with { $0.numShares = Int.max }, with { $0.numShares = 10_000_000 }, with { $0.numShares = 0 },
        with { $0.numShares = 5 },  // odd and not n − 1
        with { $0.reconstructionThreshold = Int.max }, with { $0.reconstructionThreshold = 2 },  // 2t ≤ k
        with { $0.reconstructionThreshold = Int.min },
        with { $0.clippingRange = .infinity }, with { $0.clippingRange = .nan }, with { $0.clippingRange = 0 },
        with { $0.quantizationRange = UInt64(Int64.max) }, with { $0.quantizationRange = 10_000_000 }, with { $0.quantizationRange = 1 },
        with { $0.modulusRange = UInt64(Int64.max) }, with { $0.modulusRange = 3 }, with { $0.modulusRange = 1 << 33 },
        with { $0.maxWeight = UInt64(Int64.max) }, with { $0.maxWeight = 10_000_000 }, with { $0.maxWeight = 0 },
    ])
    func clientRefusesParametersOutOfRange(p: SecAggParameters) {
        #expect(throws: SecAggError.self) { _ = try SecAggClient(setup: Self.setup(p)) }
    }

    @Test(arguments: [(UInt32.max, UInt32(0), UInt64(16)), (8, 8, 16), (8, UInt32.max, 16), (8, 0, 0),
                      (8, 0, UInt64(Int64.max)), (8, 0, UInt64.max), (1, 0, 16), (0, 0, 16)])
    func clientRefusesSetupOutOfRange(n: UInt32, index: UInt32, length: UInt64) {
        #expect(throws: SecAggError.self) { _ = try SecAggClient(setup: Self.setup(n: n, index: index, length: length)) }
    }

    @Test(arguments: [Int.max, 10_000_000, 1, 0, -1, Int.min])
    func serverRefusesClientCountsOutOfRange(n: Int) {
        #expect(throws: SecAggError.self) { _ = try SecAggServer(round: 1, config: SecAggConfig(), numClients: n, vectorLength: 10) }
    }

    @Test(arguments: [Int.max, 10_000_000_000, 0, -1])
    func serverRefusesVectorLengthsOutOfRange(length: Int) {
        #expect(throws: SecAggError.self) { _ = try SecAggServer(round: 1, config: SecAggConfig(), numClients: 10, vectorLength: length) }
    }

    @Test func oversizedListsAreRefusedByCount() throws {
        var d = try RoundDriver(config: SecAggConfig(numShares: 4, reconstructionThreshold: 3, maxWeight: 10), numClients: 8, vectorLength: 16)
        try d.exchangeKeys()
        // 10^5 neighbour entries sharing one key array: refused by count before any is looked at.
        var flood = d.neighbourKeys[0]!
        flood.neighbours = Array(repeating: flood.neighbours[0], count: 100_000)
        #expect(throws: SecAggError.countOutOfRange(field: "neighbour keys", count: 100_000, allowed: 3...4)) {
            _ = try d.clients[0]!.shareKeys(flood)
        }
        try d.shareKeys()
        var shares = d.forwarded[1]!
        shares.shares = Array(repeating: shares.shares[0], count: 10_000_000)
        #expect(throws: SecAggError.countOutOfRange(field: "forwarded shares", count: 10_000_000, allowed: 3...4)) {
            try d.clients[1]!.receiveShares(shares)
        }
        try d.clients[0]!.receiveShares(d.forwarded[0]!)
        // Int.max examples: the weight is capped at max_weight, nothing traps.
        let input = try d.clients[0]!.maskedInput(update: [Float](repeating: .infinity, count: 16), numExamples: Int.max)
        // 10^7 coordinates where 17 are expected: refused by count, the sum untouched.
        let long = SecAggMaskedInput(round: 1, sender: 0, vector: [UInt32](repeating: 0, count: 10_000_000))
        #expect(throws: SecAggError.countOutOfRange(field: "masked input", count: 10_000_000, allowed: 17...17)) {
            try d.server.receive(long)
        }
        #expect(throws: SecAggError.unknownClient(field: "masked input.sender", index: UInt32.max)) {
            try d.server.receive(SecAggMaskedInput(round: 1, sender: UInt32.max, vector: input.vector))
        }
        #expect(throws: SecAggError.wrongRound(expected: 1, got: UInt64(Int64.max))) {
            try d.server.receive(SecAggMaskedInput(round: UInt64(Int64.max), sender: 0, vector: input.vector))
        }
        try d.server.receive(input)
        // NaN cannot be quantised: refused with the index.
        try d.clients[1]!.receiveShares(d.forwarded[1]!)
        var bad = [Float](repeating: 0, count: 16)
        bad[9] = .nan
        #expect(throws: SecAggError.nonFiniteUpdate(index: 9)) { _ = try d.clients[1]!.maskedInput(update: bad, numExamples: 1) }
        #expect(throws: SecAggError.updateLengthMismatch(expected: 16, got: 10_000_000)) {
            _ = try d.clients[1]!.maskedInput(update: [Float](repeating: 0, count: 10_000_000), numExamples: 1)
        }
        try d.server.receive(d.clients[1]!.maskedInput(update: [Float](repeating: 0.5, count: 16), numExamples: 3))
        d.forwarded[0] = nil
        d.forwarded[1] = nil
        try d.maskInputs(update: { _ in ([Float](repeating: 0.5, count: 16), 3) })
        var request = d.requests[0]!
        request.keySharesOf = [UInt32](repeating: 7, count: 10_000_000)
        #expect(throws: SecAggError.self) { _ = try d.clients[0]!.unmask(request) }
        // A response with 10^7 share elements or share values ≥ p is refused by the server.
        let honest = try d.clients[2]!.unmask(d.requests[2]!)
        var huge = honest
        huge.seedShares[0].values = [UInt64](repeating: 1, count: 10_000_000)
        #expect(throws: SecAggError.self) { try d.server.receive(huge) }
        var outOfField = honest
        outOfField.seedShares[0].values[0] = UInt64(Int64.max)
        #expect(throws: SecAggError.self) { try d.server.receive(outOfField) }
        try d.server.receive(honest)
    }

    /// Defaults as documented: k = 2⌈log₂ n⌉ (at most n − 1), t = ⌊k/2⌋ + 1, Q the largest power of two
    /// with n·max_weight·(Q − 1) < 2^32.
    @Test(arguments: [(3, 2, 2, UInt64(1) << 20), (10, 8, 5, 1 << 18), (100, 14, 8, 1 << 15), (1000, 20, 11, 1 << 12)])
    func defaultsFollowTheNumberOfClients(n: Int, k: Int, t: Int, q: UInt64) throws {
        let p = try SecAggConfig().resolve(numClients: n)
        #expect(p.numShares == k && p.reconstructionThreshold == t && p.quantizationRange == q)
        // Q is the largest: doubling it would overflow the modulus.
        #expect(UInt64(n) * 1000 * (q - 1) < 1 << 32)
        #expect(UInt64(n) * 1000 * (2 * q - 1) >= 1 << 32)
    }
}
