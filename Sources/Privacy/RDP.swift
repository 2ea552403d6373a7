// Rényi differential privacy of the (Poisson-)subsampled Gaussian mechanism.
//
// Mironov, Talwar, Zhang 2019, "Rényi Differential Privacy of the Sampled Gaussian Mechanism"
// (arXiv:1908.10530): integer orders by the exact binomial sum (Sec. 3.2), fractional orders by
// the two-sided series of Sec. 3.3. The computation follows Google's dp-accounting
// (`dp_accounting/rdp/rdp_privacy_accountant.py`, 0.6.0: `_compute_log_a_int`,
// `_compute_log_a_frac`, `_compute_rdp_poisson_subsampled_gaussian`) term by term, so both give
// the same numbers; Tests/PrivacyTests compares them, and against a numerical integration.
import Foundation

/// The Rényi orders dp-accounting's `RdpAccountant` uses by default (`DEFAULT_RDP_ORDERS`):
/// 1.1, 1.2, …, 10.9, then 11 … 63, 128, 256, 512, 1024.
public let defaultRDPOrders: [Double] = {
    let fractional: [Double] = (1 ..< 100).map { (x: Int) -> Double in 1 + Double(x) / 10 }
    let integers: [Double] = (11 ..< 64).map { (x: Int) -> Double in Double(x) }
    return fractional + integers + [128, 256, 512, 1024]
}()

/// log(exp(x) + exp(y)) without overflow.
@inlinable
func logAdd(_ x: Double, _ y: Double) -> Double {
    let a = min(x, y), b = max(x, y)
    if a == -.infinity { return b }
    return log1p(exp(a - b)) + b
}

/// log of the binomial coefficient |C(n, k)| for real n (lgamma is log|Γ|).
@inlinable
func logBinomial(_ n: Double, _ k: Double) -> Double {
    lgamma(n + 1) - lgamma(k + 1) - lgamma(n - k + 1)
}

/// log(erfc(x)), accurate where erfc underflows: erfc below 25, the asymptotic (Laurent) series
/// of log erfc at infinity above (the same series dp-accounting falls back to).
func logErfc(_ x: Double) -> Double {
    if x < 25 { return log(erfc(x)) }
    let x2 = x * x
    return -log(Double.pi) / 2 - log(x) - x2 - 0.5 / x2 + 0.625 / (x2 * x2)
        - 37.0 / 24.0 / (x2 * x2 * x2) + 353.0 / 64.0 / (x2 * x2 * x2 * x2)
}

/// log A_α for integer α ≥ 2 and 0 < q < 1: A_α = Σᵢ C(α,i) qⁱ (1−q)^(α−i) exp((i²−i)/(2σ²)).
func logAInteger(q: Double, sigma: Double, alpha: Int) -> Double {
    var logA = -Double.infinity
    let logQ = log(q), log1mq = log1p(-q)
    for i in 0 ... alpha {
        let di = Double(i)
        let coef = logBinomial(Double(alpha), di) + di * logQ + Double(alpha - i) * log1mq
        logA = logAdd(logA, coef + (di * di - di) / (2 * sigma * sigma))
    }
    return logA
}

/// Most series terms a fractional order may take (dp-accounting's `_MAX_STEPS_LOG_A_FRAC`).
let maxFractionalSteps = 1000

/// log A_α for fractional α > 1 and 0 < q < 1: the integral split at z₀ = σ² log(1/q − 1) + ½,
/// each side a binomial series whose terms carry an erfc factor (arXiv:1908.10530 §3.3).
/// Like dp-accounting 0.6.0 the terms are summed by magnitude (log|C(α,i)|); their tail is
/// negligible once the stopping rule holds. Returns +∞ (the order is then useless) when the
/// series has not converged after `maxFractionalSteps` terms, as dp-accounting does.
func logAFractional(q: Double, sigma: Double, alpha: Double) -> Double {
    var logA0 = -Double.infinity, logA1 = -Double.infinity
    let z0 = sigma * sigma * log(1 / q - 1) + 0.5
    let logQ = log(q), log1mq = log1p(-q)
    var lastS0 = -Double.infinity, lastS1 = -Double.infinity
    let s2 = 2 * sigma * sigma
    for step in 0 ..< maxFractionalSteps {
        let i = Double(step)
        let logCoef = logBinomial(alpha, i)
        let j = alpha - i
        let logT0 = logCoef + i * logQ + j * log1mq
        let logT1 = logCoef + j * logQ + i * log1mq
        let logE0 = log(0.5) + logErfc((i - z0) / (2.0.squareRoot() * sigma))
        let logE1 = log(0.5) + logErfc((z0 - j) / (2.0.squareRoot() * sigma))
        let logS0 = logT0 + (i * i - i) / s2 + logE0
        let logS1 = logT1 + (j * j - j) / s2 + logE1
        logA0 = logAdd(logA0, logS0)
        logA1 = logAdd(logA1, logS1)
        let total = logAdd(logA0, logA1)
        if logS0 < lastS0, logS1 < lastS1, max(logS0, logS1) < total - 30 { return total }
        lastS0 = logS0
        lastS1 = logS1
    }
    return .infinity
}

/// RDP ε(α) of one application of the Gaussian mechanism with noise multiplier `noiseMultiplier`
/// (noise std / L2 sensitivity) on a Poisson subsample of rate `samplingRate`, at each order.
///
/// q = 0 gives 0; z = 0 gives +∞; q = 1 gives α/(2z²) (the plain Gaussian mechanism). `series`
/// picks how fractional orders are summed: dp-accounting's by magnitude (DP-FedAvg) or Opacus's
/// signed series (DP-SGD, OpacusRDP.swift); integer orders are the same exact sum for both.
public func rdpPoissonSubsampledGaussian(samplingRate q: Double, noiseMultiplier z: Double,
                                         orders: [Double] = defaultRDPOrders,
                                         series: RDPSeries = .dpAccounting) throws(PrivacyError) -> [Double] {
    guard q.isFinite, q >= 0, q <= 1 else { throw .invalidSamplingRate(q) }
    guard z.isFinite, z >= 0 else { throw .invalidNoiseMultiplier(z) }
    for a in orders where !(a > 1) || !a.isFinite { throw .invalidOrder(a) }
    return orders.map { alpha in
        if q == 0 { return 0 }
        if z == 0 { return .infinity }
        if q == 1 { return alpha / (2 * z * z) }
        let logA: Double
        if alpha == alpha.rounded(), alpha < Double(Int32.max) {
            logA = logAInteger(q: q, sigma: z, alpha: Int(alpha))
        } else {
            switch series {
            case .dpAccounting: logA = logAFractional(q: q, sigma: z, alpha: alpha)
            case .opacus: logA = logAFractionalSigned(q: q, sigma: z, alpha: alpha)
            }
        }
        return logA / (alpha - 1)
    }
}
