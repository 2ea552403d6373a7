import Foundation

// Server-side optimiser steps as pure functions (Reddi, Charles, Zaheer, Garrett, Rush, Konečný,
// Kumar & McMahan, "Adaptive Federated Optimization", ICLR 2021, arXiv:2003.00295, Algorithm 2;
// Hsu, Qi & Brown, "Measuring the Effects of Non-Identical Data Distribution for Federated
// Visual Classification", 2019, arXiv:1909.06335, for FedAvgM). Each takes the global model w,
// the round's FedAvg average and the carried moments, and returns the new model and moments.
// Arithmetic per element is in Double, stored as Float; every step is a deterministic function of
// its inputs, so a resumed run (moments restored from the checkpoint) continues bit for bit.

/// FedAvgM (Flower's flwr/server/strategy/fedavgm.py): pseudo-gradient g = w − avg; with
/// momentum μ > 0, v ← μ·v + g (v ← g on the first round, when `velocity` is nil); then
/// w ← w − η·v (w ← w − η·g without momentum). Follows PyTorch's SGD convention, as Flower does.
public func fedAvgMStep(global w: [Float], average avg: [Float], velocity: [Float]?,
                        serverLearningRate eta: Double, serverMomentum mu: Double) -> (model: [Float], velocity: [Float]?) {
    let n = w.count
    var out = [Float](repeating: 0, count: n)
    var v: [Float]? = mu > 0 ? [Float](repeating: 0, count: n) : nil
    for i in 0 ..< n {
        let g = Double(w[i]) - Double(avg[i])
        var step = g
        if mu > 0 {
            let vi = velocity.map { mu * Double($0[i]) + g } ?? g
            v?[i] = Float(vi)
            step = Double(Float(vi))
        }
        out[i] = Float(Double(w[i]) - eta * step)
    }
    return (out, v)
}

/// Which second-moment rule a FedOpt step uses.
public enum FedOptVariant: Sendable {
    /// v ← β₂·v + (1 − β₂)·Δ², with Flower's bias-corrected rate (see `fedOptStep`).
    case adam
    /// v ← v − (1 − β₂)·Δ²·sign(v − Δ²).
    case yogi
    /// v ← v + Δ².
    case adagrad
}

/// One FedOpt server step (Flower's fedadam.py / fedyogi.py / fedadagrad.py, Reddi et al. 2021
/// Algorithm 2): Δ = avg − w; m ← β₁·m + (1 − β₁)·Δ; v per `variant`;
/// w ← w + η_t · m / (√v + τ). m and v start at zero (nil).
///
/// η_t = η for Yogi and Adagrad. For Adam, Flower multiplies η by Adam's bias correction
/// √(1 − β₂^(t+1)) / (1 − β₁^(t+1)) with t the server round (counted from 1), which the paper's
/// Algorithm 2 does not have (and Kingma & Ba would use exponent t); we follow Flower, so the same
/// hyperparameters give the same trajectory in both.
public func fedOptStep(_ variant: FedOptVariant, round t: Int, global w: [Float], average avg: [Float],
                       m: [Float]?, v: [Float]?, eta: Double, beta1: Double, beta2: Double,
                       tau: Double) -> (model: [Float], m: [Float], v: [Float]) {
    let n = w.count
    var out = [Float](repeating: 0, count: n)
    var m2 = [Float](repeating: 0, count: n)
    var v2 = [Float](repeating: 0, count: n)
    var etaT = eta
    if case .adam = variant {
        etaT = eta * (1 - Foundation.pow(beta2, Double(t) + 1)).squareRoot() / (1 - Foundation.pow(beta1, Double(t) + 1))
    }
    for i in 0 ..< n {
        let d = Double(avg[i]) - Double(w[i])
        let mi = beta1 * Double(m?[i] ?? 0) + (1 - beta1) * d
        let vOld = Double(v?[i] ?? 0)
        let vi: Double
        switch variant {
        case .adam: vi = beta2 * vOld + (1 - beta2) * d * d
        case .yogi:
            let diff = vOld - d * d
            vi = vOld - (1 - beta2) * d * d * (diff > 0 ? 1 : diff < 0 ? -1 : 0)
        case .adagrad: vi = vOld + d * d
        }
        m2[i] = Float(mi)
        v2[i] = Float(vi)
        out[i] = Float(Double(w[i]) + etaT * Double(m2[i]) / (Double(v2[i]).squareRoot() + tau))
    }
    return (out, m2, v2)
}
