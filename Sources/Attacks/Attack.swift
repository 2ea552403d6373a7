import Foundation

import FlowerCore

/// The attacks a simulated malicious client can mount (`flwr simulate --malicious M --attack
/// KIND`, `flwr client --attack KIND`). With w the global model sent, wᵢ the honest update and s
/// the attack scale:
public enum AttackKind: String, Sendable, CaseIterable, CustomStringConvertible {
    /// Sends w − s·(wᵢ − w): the honest step reversed and amplified.
    case signFlip = "sign-flip"
    /// Sends w + s·(wᵢ − w): the honest step amplified.
    case scale
    /// Sends w + s·‖wᵢ − w‖₂·z/‖z‖₂ with z ~ N(0, I): a random direction of the honest norm (× s).
    case gaussian
    /// Trains on permuted labels (y → K − 1 − y) and sends that honest-looking update.
    case labelFlip = "label-flip"
    /// Sends the honest update with one value set to NaN (the server must reject it).
    case nan
    /// Sends the honest update but claims `claimedExamples` training examples.
    case claimExamples = "claim-examples"

    public var description: String { rawValue }

    /// Whether the attack changes the client's training data (done at data level, see `flipLabels`).
    public var changesData: Bool { self == .labelFlip }
}

/// Attack settings.
public struct AttackSettings: Sendable, Equatable {
    public var kind: AttackKind
    /// s in the formulas of `AttackKind`.
    public var scale: Double
    /// The count `claim-examples` reports.
    public var claimedExamples: Int
    /// Seed of `gaussian`'s noise (each round and partition draws its own stream).
    public var seed: UInt64

    public init(kind: AttackKind, scale: Double = 1, claimedExamples: Int = 1_000_000_000, seed: UInt64 = 0) {
        self.kind = kind
        self.scale = scale
        self.claimedExamples = claimedExamples
        self.seed = seed
    }
}

/// The label-flip permutation y → K − 1 − y over `classes` = K classes (an involution with no
/// fixed point for even K). Labels outside 0..<K are left as they are.
public func flipLabels(_ labels: [Int32], classes: Int) -> [Int32] {
    labels.map { $0 >= 0 && Int($0) < classes ? Int32(classes - 1) - $0 : $0 }
}

/// The malicious update for `kind` from the global model `global` and the honest update `honest`
/// (same layout), drawing gaussian noise from `rng`. `label-flip` and `claim-examples` return the
/// honest update unchanged (their attack is elsewhere).
public func poison<G: RandomNumberGenerator>(_ honest: Parameters, global: Parameters, settings: AttackSettings,
                                             using rng: inout G) -> Parameters {
    var out = honest
    let s = settings.scale
    switch settings.kind {
    case .signFlip, .scale:
        let sign = settings.kind == .signFlip ? -s : s
        out.values.withUnsafeMutableBufferPointer { u in
            global.values.withUnsafeBufferPointer { g in
                for i in 0 ..< u.count { u[i] = Float(Double(g[i]) + sign * (Double(u[i]) - Double(g[i]))) }
            }
        }
    case .gaussian:
        var norm2 = 0.0
        for i in 0 ..< honest.count {
            let d = Double(honest.values[i]) - Double(global.values[i])
            norm2 += d * d
        }
        var z = [Double](repeating: 0, count: honest.count)
        var z2 = 0.0
        for i in 0 ..< z.count {
            z[i] = standardNormal(using: &rng)
            z2 += z[i] * z[i]
        }
        let factor = z2 > 0 ? s * norm2.squareRoot() / z2.squareRoot() : 0
        for i in 0 ..< z.count { out.values[i] = Float(Double(global.values[i]) + factor * z[i]) }
    case .nan:
        if !out.values.isEmpty { out.values[0] = .nan }
    case .labelFlip, .claimExamples:
        break
    }
    return out
}

/// One N(0, 1) draw (Box–Muller on two uniform doubles in (0, 1]).
func standardNormal<G: RandomNumberGenerator>(using rng: inout G) -> Double {
    let u1 = Double(rng.next() >> 11 + 1) * 0x1p-53
    let u2 = Double(rng.next() >> 11) * 0x1p-53
    return (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
}
