import FedAvg
import FlowerCore

/// Multi-Krum: Blanchard et al., NeurIPS 2017 (§4, "Multi-Krum"). Semantics of Flower's
/// flwr/server/strategy/krum.py with `num_clients_to_keep` = m > 0: the m updates with the lowest
/// Krum scores are averaged weighted by numExamples (Flower's `aggregate`), where the paper
/// averages them unweighted; we follow Flower. m larger than the round's results keeps them all.
/// Buffers the round's updates.
public struct MultiKrum: FedAvgBased {
    public var base: FedAvg
    /// f, the number of Byzantine clients tolerated (`--num-malicious-clients`).
    public var numMaliciousClients: Int
    /// m, the updates kept (`--num-clients-to-keep`).
    public var numClientsToKeep: Int
    public var name: String { "MultiKrum" }

    public init(base: FedAvg, numMaliciousClients: Int = 0, numClientsToKeep: Int) {
        self.base = base
        self.numMaliciousClients = numMaliciousClients
        self.numClientsToKeep = numClientsToKeep
    }

    public func makeFitAggregator(_ context: FitRoundContext) -> any FitAggregator {
        let (f, m) = (numMaliciousClients, numClientsToKeep)
        let template = context.parameters
        return BufferedAggregator(context, base: base) { updates in
            let keep = multiKrumSelect(distances: squaredDistances(updates.map(\.values)), numMalicious: f,
                                       keep: min(m, updates.count))
            var avg = WeightedAverage(template: template)
            for k in keep {
                var p = template
                p.values = updates[k].values
                try? avg.add(p, numExamples: updates[k].numExamples)  // validated on arrival
            }
            return avg.average()?.values ?? updates[keep[0]].values
        }
    }
}
