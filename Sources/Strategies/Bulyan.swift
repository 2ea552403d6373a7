import FedAvg
import FlowerCore

/// Bulyan: El Mhamdi, Guerraoui & Rouault, "The Hidden Vulnerability of Distributed Learning in
/// Byzantium", ICML 2018 (arXiv:1802.07927). Semantics of Flower's flwr/server/strategy/bulyan.py
/// with Krum as the first rule (`aggregate_bulyan`, see `bulyan`): needs n ≥ 4f + 3 results, else
/// the round is refused with the reason (10 clients allow f ≤ 1). Buffers the round's updates.
public struct Bulyan: FedAvgBased {
    public var base: FedAvg
    /// f, the number of Byzantine clients tolerated (`--num-malicious-clients`).
    public var numMaliciousClients: Int
    public var name: String { "Bulyan" }

    public init(base: FedAvg, numMaliciousClients: Int = 0) {
        self.base = base
        self.numMaliciousClients = numMaliciousClients
    }

    public func makeFitAggregator(_ context: FitRoundContext) -> any FitAggregator {
        let f = numMaliciousClients
        return BufferedAggregator(context, base: base) { updates throws(RobustAggregationError) in
            try bulyan(updates.map(\.values), numMalicious: f)
        }
    }
}
