// `flwr privacy epsilon`: the user-level ε of DP-FedAvg after T rounds (RDP accountant for the
// subsampled Gaussian), or the smallest noise multiplier that stays within a target ε.
import Foundation
import Privacy

/// One accounting question: ε for a noise multiplier, or the noise multiplier for a target ε.
public struct PrivacyPlan: Sendable {
    public var noiseMultiplier: Double?
    public var targetEpsilon: Double?
    public var samplingRate: Double
    public var rounds: Int
    public var delta: Double

    public init(noiseMultiplier: Double?, targetEpsilon: Double?, samplingRate: Double, rounds: Int, delta: Double) {
        self.noiseMultiplier = noiseMultiplier; self.targetEpsilon = targetEpsilon
        self.samplingRate = samplingRate; self.rounds = rounds; self.delta = delta
    }

    /// The answer as the lines the command prints: text, or one JSON object with `json`.
    public func report(json: Bool) throws(PrivacyError) -> [String] {
        let z: Double
        if let target = targetEpsilon {
            z = try solveNoiseMultiplier(targetEpsilon: target, samplingRate: samplingRate, rounds: rounds, delta: delta)
        } else {
            z = noiseMultiplier ?? 0
        }
        let (eps, order) = try computeEpsilon(noiseMultiplier: z, samplingRate: samplingRate, rounds: rounds, delta: delta)
        if json {
            var fields = ["\"epsilon\": \(jsonNumber(eps))", "\"delta\": \(jsonNumber(delta))", "\"order\": \(jsonNumber(order))"]
            if targetEpsilon != nil { fields.append("\"noise_multiplier\": \(jsonNumber(z))") }
            return ["{" + fields.joined(separator: ", ") + "}"]
        }
        return (targetEpsilon != nil ? [String(format: "noise multiplier z = %.6g", z)] : [])
            + [String(format: "ε = %.6g at δ = %g (Rényi order %g) after %d rounds at q = %g, z = %g",
                      eps, delta, order, rounds, samplingRate, z)]
    }

    /// A JSON number; +∞ (no noise) is written as null since JSON has no infinity.
    private func jsonNumber(_ x: Double) -> String { x.isFinite ? "\(x)" : "null" }
}

/// `flwr privacy epsilon --mechanism dp-sgd`: the record-level ε of one site's DP-SGD training, or
/// the σ that reaches a target ε (Opacus's RDP orders; Sources/Privacy/DPSGDAccounting.swift).
public struct DPSGDPrivacyPlan: Sendable {
    /// Poisson rate q, when given directly; else q = batchSize / datasetSize.
    public var samplingRate: Double?
    public var datasetSize: Int?
    public var batchSize: Int?
    public var epochs: Int
    public var noiseMultiplier: Double?
    public var targetEpsilon: Double?
    public var delta: Double

    public init(samplingRate: Double?, datasetSize: Int?, batchSize: Int?, epochs: Int, noiseMultiplier: Double?,
                targetEpsilon: Double?, delta: Double) {
        self.samplingRate = samplingRate; self.datasetSize = datasetSize; self.batchSize = batchSize
        self.epochs = epochs; self.noiseMultiplier = noiseMultiplier; self.targetEpsilon = targetEpsilon; self.delta = delta
    }

    /// The answer as the text the command prints, or one JSON object with `json`.
    public func report(json: Bool) throws(PrivacyError) -> String {
        let plan = if let q = samplingRate {
            try DPSGDPlan(samplingRate: q, epochs: epochs, noiseMultiplier: noiseMultiplier ?? 0, delta: delta)
        } else {
            try DPSGDPlan(datasetSize: datasetSize ?? 0, batchSize: batchSize ?? 0, epochs: epochs,
                          noiseMultiplier: noiseMultiplier ?? 0, delta: delta)
        }
        return try dpSGDEpsilonReport(plan: plan, targetEpsilon: targetEpsilon, json: json)
    }
}
