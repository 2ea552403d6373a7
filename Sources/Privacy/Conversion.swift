// From Rényi DP to (ε, δ)-DP.
import Foundation

/// The (ε, δ) guarantee implied by RDP values `rdp` at `orders`, and the order attaining it.
///
/// This is the conversion dp-accounting 0.6.0 uses (`compute_epsilon` in
/// `rdp_privacy_accountant.py`): Canonne, Kamath, Steinke 2020 ("The Discrete Gaussian for
/// Differential Privacy", arXiv:2004.00010, Proposition 12; the same bound is Asoodeh et al. 2020,
/// arXiv:2001.05990, Eq. 20):
///
///     ε = min over α of  rdp(α) + log1p(−1/α) − log(δ·α)/(α − 1),
///
/// tighter than Mironov's rdp(α) + log(1/δ)/(α − 1). Orders at or below 1.01 are skipped (the
/// bound is numerically unstable there) unless the KL bound δ ≥ √(1 − e^(−rdp)) already gives
/// ε = 0. Negative ε is reported as 0.
public func epsilonFromRDP(orders: [Double], rdp: [Double], delta: Double) throws(PrivacyError) -> (epsilon: Double, order: Double) {
    guard delta.isFinite, delta > 0, delta < 1 else { throw .invalidDelta(delta) }
    precondition(orders.count == rdp.count && !orders.isEmpty, "one RDP value per order")
    var best = (epsilon: Double.infinity, order: orders[0])
    for (a, r) in zip(orders, rdp) {
        let eps: Double
        if r < 0 {
            eps = 0
        } else if delta * delta + expm1(-r) > 0 {
            eps = 0
        } else if a > 1.01 {
            eps = r + log1p(-1 / a) - log(delta * a) / (a - 1)
        } else {
            eps = .infinity
        }
        if eps < best.epsilon { best = (eps, a) }
    }
    return (max(0, best.epsilon), best.order)
}
