/// A privacy parameter that cannot be used, with what to change.
public enum PrivacyError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The sampling rate is not in [0, 1].
    case invalidSamplingRate(Double)
    /// The noise multiplier is negative or not finite.
    case invalidNoiseMultiplier(Double)
    /// A Rényi order is not a finite number above 1.
    case invalidOrder(Double)
    /// δ is not in (0, 1).
    case invalidDelta(Double)
    /// A target ε that is not positive and finite.
    case invalidEpsilon(Double)
    /// A negative number of rounds.
    case invalidRounds(Int)
    /// No noise multiplier up to `maximum` reaches the target.
    case targetUnreachable(epsilon: Double, maximum: Double)
    /// A DP-SGD round would take a site's ε past its budget.
    case overBudget(ledger: String, spent: Double, wouldBe: Double, budget: Double, delta: Double)
    /// A ledger file that cannot be read, parsed or written.
    case ledger(path: String, reason: String)
    /// A DP-SGD plan parameter out of range (dataset size, batch size, epochs, steps).
    case invalidPlan(name: String, value: Int)

    public var description: String {
        switch self {
        case .invalidSamplingRate(let q):
            return "sampling rate \(q) is not in [0, 1]; pass the fraction of clients sampled per round (e.g. 0.1)"
        case .invalidNoiseMultiplier(let z):
            return "noise multiplier \(z) must be a finite number >= 0 (noise std divided by the clipping norm)"
        case .invalidOrder(let a):
            return "Rényi order \(a) must be a finite number above 1"
        case .invalidDelta(let d):
            return "delta \(d) must be in (0, 1); use e.g. 1e-5, below 1/number of clients"
        case .invalidEpsilon(let e):
            return "target epsilon \(e) must be a finite number > 0"
        case .invalidRounds(let t):
            return "rounds \(t) must be >= 0"
        case .targetUnreachable(let e, let zMax):
            return "no noise multiplier up to \(zMax) reaches epsilon <= \(e); raise the target epsilon or delta, or sample fewer clients or rounds"
        case let .overBudget(ledger, spent, wouldBe, budget, delta):
            return "DP-SGD privacy budget exceeded: this round would take epsilon from \(spent) to \(wouldBe) "
                + "(delta \(delta)) but the budget is \(budget) (ledger \(ledger)); the site refuses the round. "
                + "Raise --target-epsilon only if the data owner agrees, or train with more noise or fewer steps"
        case let .ledger(path, reason):
            return "DP-SGD ledger \(path): \(reason); it is the record of epsilon already spent: restore it rather than delete it"
        case let .invalidPlan(name, value):
            return "DP-SGD \(name) = \(value) must be positive (and the batch no larger than the dataset)"
        }
    }
}
