import FedAvg
import FlowerCore

/// FedProx: Li, Sahu, Zaheer, Sanjabi, Talwalkar & Smith, "Federated Optimization in Heterogeneous
/// Networks", MLSys 2020 (arXiv:1812.06127). Semantics of Flower's
/// flwr/server/strategy/fedprox.py: the server aggregates exactly as FedAvg and adds
/// `proximal_mu` = μ to every FitIns config; the client minimises its loss plus
/// (μ/2)·‖w − w_global‖², i.e. adds μ·(w − w_global) to each gradient (Tensor's
/// `addProximalGradient`). μ = 0 is FedAvg. Flower requires μ; we require it too (`--proximal-mu`).
public struct FedProx: FedAvgBased {
    public var base: FedAvg
    /// μ, the proximal coefficient.
    public var proximalMu: Double
    public var name: String { "FedProx" }

    /// The fit-config key the client reads μ from (Flower's name).
    public static let configKey = "proximal_mu"

    public init(base: FedAvg, proximalMu: Double) {
        self.base = base
        self.proximalMu = proximalMu
    }

    public func configureFit(round: Int, parameters: Parameters,
                             clientManager: any SamplingClientManager) -> [(client: any ClientProxy, ins: FitIns)] {
        base.configureFit(round: round, parameters: parameters, clientManager: clientManager).map { call in
            var ins = call.ins
            ins.config[Self.configKey] = .double(proximalMu)
            return (call.client, ins)
        }
    }

    public func makeFitAggregator(_ context: FitRoundContext) -> any FitAggregator {
        base.makeFitAggregator(context)
    }
}
