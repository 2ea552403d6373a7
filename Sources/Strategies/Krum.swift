import FedAvg
import FlowerCore

/// Krum: Blanchard, El Mhamdi, Guerraoui & Stainer, "Machine Learning with Adversaries:
/// Byzantine Tolerant Gradient Descent", NeurIPS 2017. Semantics of Flower's
/// flwr/server/strategy/krum.py (`aggregate_krum` with `num_clients_to_keep` = 0): the new model
/// is the one update whose summed squared distance to its n − f − 2 nearest others is smallest
/// (at least 1 neighbour, as Flower; the paper needs n > 2f + 2). Keeping a single client's
/// update costs accuracy on non-IID data. Buffers the round's updates.
public struct Krum: FedAvgBased {
    public var base: FedAvg
    /// f, the number of Byzantine clients tolerated (`--num-malicious-clients`).
    public var numMaliciousClients: Int
    public var name: String { "Krum" }

    public init(base: FedAvg, numMaliciousClients: Int = 0) {
        self.base = base
        self.numMaliciousClients = numMaliciousClients
    }

    public func makeFitAggregator(_ context: FitRoundContext) -> any FitAggregator {
        let f = numMaliciousClients
        return BufferedAggregator(context, base: base) { updates in
            let values = updates.map(\.values)
            let k = krumSelect(distances: squaredDistances(values), indices: Array(values.indices), numMalicious: f)
            return values[k]
        }
    }
}
