// A step-by-step in-memory round for tests that intervene between steps (drop, replay, cheat).
@testable import SecureAggregation

/// SplitMix64: a seeded generator so graphs and test data are reproducible.
struct SeededRandom: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

struct RoundDriver {
    var server: SecAggServer
    var clients: [UInt32: SecAggClient] = [:]
    var neighbourKeys: [UInt32: SecAggNeighbourKeys] = [:]
    var forwarded: [UInt32: SecAggForwardedShares] = [:]
    var masked: [UInt32: SecAggMaskedInput] = [:]
    var requests: [UInt32: SecAggUnmaskRequest] = [:]
    var rng = SeededRandom(state: 42)

    init(round: UInt64 = 1, config: SecAggConfig, numClients: Int, vectorLength: Int) throws {
        server = try SecAggServer(round: round, config: config, numClients: numClients, vectorLength: vectorLength)
    }

    /// Setup and public keys from every client not in `drop`; closes with the graph.
    mutating func exchangeKeys(drop: Set<UInt32> = []) throws {
        for i in 0..<UInt32(server.numClients) where !drop.contains(i) {
            let c = try SecAggClient(setup: server.setup(for: i))
            clients[i] = c
            try server.receive(c.publicKeys)
        }
        for m in try server.neighbourKeys(using: &rng) { neighbourKeys[m.receiver] = m }
    }

    /// Client i's neighbours on the graph.
    func neighbours(of i: UInt32) -> [UInt32] { neighbourKeys[i]?.neighbours.map(\.sender) ?? [] }

    mutating func shareKeys(drop: Set<UInt32> = []) throws {
        for (i, m) in neighbourKeys.sorted(by: { $0.key < $1.key }) where !drop.contains(i) {
            try server.receive(clients[i]!.shareKeys(m))
        }
        for m in try server.forwardShares() { forwarded[m.receiver] = m }
    }

    mutating func maskInputs(drop: Set<UInt32> = [], update: (UInt32) -> ([Float], Int)) throws {
        for (i, m) in forwarded.sorted(by: { $0.key < $1.key }) where !drop.contains(i) {
            try clients[i]!.receiveShares(m)
            let (values, examples) = update(i)
            let input = try clients[i]!.maskedInput(update: values, numExamples: examples)
            masked[i] = input
            try server.receive(input)
        }
        for r in try server.unmaskRequests() { requests[r.receiver] = r }
    }

    mutating func unmask(drop: Set<UInt32> = []) throws -> SecAggResult {
        for (i, r) in requests.sorted(by: { $0.key < $1.key }) where !drop.contains(i) {
            try server.receive(clients[i]!.unmask(r))
        }
        return try server.finish()
    }
}

/// Σ wᵢ·xᵢ / Σ wᵢ in Double, the plain FedAvg reference, over the clipped values.
func plainFedAvg(_ updates: [[Float]], weights: [Double], clip: Double) -> [Double] {
    let total = weights.reduce(0, +)
    return (0..<updates[0].count).map { j in
        zip(updates, weights).reduce(0.0) { $0 + $1.1 * min(max(Double($1.0[j]), -clip), clip) } / total
    }
}
