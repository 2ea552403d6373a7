// The RDP of the Poisson-subsampled Gaussian as Opacus 1.6 computes it
// (`opacus/accountants/analysis/rdp.py`: `_compute_log_a_for_int_alpha`,
// `_compute_log_a_for_frac_alpha`, `_compute_rdp`), for record-level DP-SGD, whose ε users compare
// with Opacus's. Integer orders are the same binomial sum as dp-accounting's (RDP.swift).
// Fractional orders differ: Opacus adds the series' terms with their signs (C(α, i) < 0 for odd
// i > α) and stops once both terms fall below e⁻³⁰, which is the series' value; dp-accounting
// 0.6.0 adds their magnitudes, an upper bound that is a few % to several times larger where the
// best order is the smallest one (large ε: q = 0.1, σ = 0.5, 10,000 steps). Both are valid RDP
// bounds where the signed series converges; Tests/PrivacyTests compares this one with Opacus.
import Foundation

/// Which series computes fractional orders.
public enum RDPSeries: Sendable, Equatable {
    /// dp-accounting 0.6.0: magnitudes summed (an upper bound); DP-FedAvg uses it.
    case dpAccounting
    /// Opacus 1.6: signed terms (the series' value); DP-SGD uses it.
    case opacus
}

/// log(exp(x) − exp(y)) for x ≥ y, as Opacus's `_log_sub` (−∞ when equal).
func logSub(_ x: Double, _ y: Double) -> Double {
    if y == -.infinity { return x }
    if x <= y { return -.infinity }
    let d = expm1(x - y)
    return d.isFinite ? log(d) + y : x
}

/// Most terms Opacus's fractional series may take here (Opacus has no cap; past it the order is
/// dropped as +∞, which only loosens nothing: another order then gives ε).
let maxOpacusFractionalSteps = 100_000

/// log A_α for fractional α > 1 and 0 < q < 1 by Opacus's signed series.
func logAFractionalSigned(q: Double, sigma: Double, alpha: Double) -> Double {
    var logA0 = -Double.infinity, logA1 = -Double.infinity
    let z0 = sigma * sigma * log(1 / q - 1) + 0.5
    let logQ = log(q), log1mq = log1p(-q), s2 = 2 * sigma * sigma
    var positive = true   // sign of C(α, i): C(α, i+1) = C(α, i)·(α − i)/(i + 1)
    for step in 0 ..< maxOpacusFractionalSteps {
        let i = Double(step)
        if step > 0, alpha - (i - 1) < 0 { positive.toggle() }
        let logCoef = logBinomial(alpha, i)
        let j = alpha - i
        let logT0 = logCoef + i * logQ + j * log1mq
        let logT1 = logCoef + j * logQ + i * log1mq
        let logE0 = log(0.5) + logErfc((i - z0) / (2.0.squareRoot() * sigma))
        let logE1 = log(0.5) + logErfc((z0 - j) / (2.0.squareRoot() * sigma))
        let logS0 = logT0 + (i * i - i) / s2 + logE0
        let logS1 = logT1 + (j * j - j) / s2 + logE1
        if positive {
            logA0 = logAdd(logA0, logS0); logA1 = logAdd(logA1, logS1)
        } else {
            logA0 = logSub(logA0, logS0); logA1 = logSub(logA1, logS1)
        }
        if max(logS0, logS1) < -30 { return logAdd(logA0, logA1) }
    }
    return .infinity
}
