// System heterogeneity on a virtual clock: how long each client takes to receive the model, train
// and send its update back, and whether it is online — computed, not slept. The model is
// deterministic (a function of the seed and the client's identity), so a run is reproducible and
// the moment a result will arrive is known when the client starts.
import FlowerBase
import Foundation

/// A lognormal distribution, exp(μ + σ·Z) with Z standard normal: `lognormal:σ` (μ = 0, median 1)
/// or `lognormal:μ,σ`.
public struct LogNormal: Sendable, Equatable, CustomStringConvertible {
    public var mu: Double
    public var sigma: Double

    public init(mu: Double = 0, sigma: Double) {
        self.mu = mu
        self.sigma = sigma
    }

    /// Parses `lognormal:σ` or `lognormal:μ,σ` (σ ≥ 0, both finite); nil otherwise.
    public init?(argument: String) {
        let prefix = "lognormal:"
        guard argument.hasPrefix(prefix) else { return nil }
        let numbers = argument.dropFirst(prefix.count).split(separator: ",", omittingEmptySubsequences: false)
            .map { Double($0.trimmingCharacters(in: .whitespaces)) }
        guard !numbers.isEmpty, numbers.count <= 2, numbers.allSatisfy({ $0 != nil && $0!.isFinite }) else { return nil }
        let values = numbers.map { $0! }
        if values.count == 1 { self.init(mu: 0, sigma: values[0]) } else { self.init(mu: values[0], sigma: values[1]) }
        guard sigma >= 0 else { return nil }
    }

    /// exp(μ + σ·z).
    public func value(z: Double) -> Double { exp(mu + sigma * z) }

    public var description: String { mu == 0 ? "lognormal:\(sigma)" : "lognormal:\(mu),\(sigma)" }
}

/// The virtual clock's cost model of a federation of heterogeneous clients (`flwr simulate
/// --client-speed/--link-mbps/--client-availability`). Deterministic:
///
/// - compute seconds = examples × local epochs × `secondsPerExample` × speed factor, where the
///   speed factor is drawn once per client from `speed` (median 1; a factor of 10 is a client ten
///   times slower than the median);
/// - transfer seconds = bytes / link rate, once down (the model) and once up (the update), where a
///   client's rate is drawn once from `linkMbps` (megabits per second) and the bytes are the
///   float32 payload, 4 bytes per value (framing and handshakes are not counted);
/// - a client is online for slot s (a sync round, or an async server version) with probability
///   `availability`, drawn independently per client and slot.
///
/// Every draw is a function of (`seed`, the client's identity, what is drawn, the slot) alone, so
/// the same client has the same speed in every run with the same seed.
public struct SystemModel: Sendable {
    public var seed: UInt64
    /// Per-client compute speed factor (nil: every client has factor 1).
    public var speed: LogNormal?
    /// Per-client link rate in Mbit/s (nil: transfers take no time).
    public var linkMbps: LogNormal?
    /// Probability that a client is online in a slot (1: always).
    public var availability: Double
    /// Seconds one example takes for one local epoch on a client of factor 1.
    public var secondsPerExample: Double
    /// Local epochs per fit.
    public var epochs: Int
    /// Training examples of a client (its partition's size, as cut by --max-train-examples).
    public var examples: @Sendable (any ClientProxy) -> Int

    public init(seed: UInt64, speed: LogNormal? = nil, linkMbps: LogNormal? = nil, availability: Double = 1,
                secondsPerExample: Double = 0.001, epochs: Int = 1,
                examples: @escaping @Sendable (any ClientProxy) -> Int) {
        self.seed = seed
        self.speed = speed
        self.linkMbps = linkMbps
        self.availability = availability
        self.secondsPerExample = secondsPerExample
        self.epochs = epochs
        self.examples = examples
    }

    /// FNV-1a of the identity's UTF-8 bytes: stable across processes (Swift's `Hasher` is not).
    static func identityHash(_ id: String) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in id.utf8 {
            h ^= UInt64(b)
            h = h &* 0x0000_0100_0000_01B3
        }
        return h
    }

    private static let speedStream: UInt64 = 0x5350_4545_44
    private static let linkStream: UInt64 = 0x4C49_4E4B
    private static let onlineStream: UInt64 = 0x4F4E_4C49_4E45

    private func generator(_ id: String, _ what: UInt64, _ slot: UInt64 = 0) -> SplitMix64 {
        let a = SplitMix64.derive(seed: seed ^ Self.identityHash(id), stream: what)
        return SplitMix64(seed: SplitMix64.derive(seed: a, stream: slot))
    }

    /// A standard normal draw (Box–Muller) for `id` and `what`.
    private func normal(_ id: String, _ what: UInt64) -> Double {
        var g = generator(id, what)
        let u1 = g.nextOpenUnit(), u2 = g.nextOpenUnit()
        return (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
    }

    /// Client `id`'s compute-time factor (1 without `speed`).
    public func speedFactor(_ id: String) -> Double { speed.map { $0.value(z: normal(id, Self.speedStream)) } ?? 1 }

    /// Client `id`'s link rate in Mbit/s (nil without `linkMbps`: transfers are free).
    public func linkRate(_ id: String) -> Double? { linkMbps.map { $0.value(z: normal(id, Self.linkStream)) } }

    /// Whether client `id` is online in `slot`.
    public func isOnline(_ id: String, slot: Int) -> Bool {
        guard availability < 1 else { return true }
        var g = generator(id, Self.onlineStream, UInt64(truncatingIfNeeded: slot))
        return g.nextOpenUnit() < availability
    }

    /// Seconds to train `examples` examples for `epochs` epochs on client `id`.
    public func computeSeconds(_ id: String, examples: Int) -> Double {
        Double(examples) * Double(epochs) * secondsPerExample * speedFactor(id)
    }

    /// Seconds to move `bytes` over client `id`'s link, one way.
    public func transferSeconds(_ id: String, bytes: Int) -> Double {
        guard let mbps = linkRate(id) else { return 0 }
        return Double(bytes) * 8 / (mbps * 1_000_000)
    }

    /// Seconds from sending `client` a model of `parameterCount` values to its update arriving:
    /// download + training + upload.
    public func fitSeconds(_ client: any ClientProxy, parameterCount: Int) -> Double {
        let bytes = 4 * parameterCount
        return 2 * transferSeconds(client.id, bytes: bytes) + computeSeconds(client.id, examples: examples(client))
    }
}

/// The clients of `base` online in `slot` under `model`: what the strategy samples from when the
/// virtual clock models availability. Registration goes to `base`.
final class OnlineClients: SamplingClientManager {
    let base: any SamplingClientManager
    let model: SystemModel
    let slot: Int

    init(base: any SamplingClientManager, model: SystemModel, slot: Int) {
        self.base = base
        self.model = model
        self.slot = slot
    }

    func all() -> [any ClientProxy] { base.all().filter { model.isOnline($0.id, slot: slot) } }
    var count: Int { all().count }
    func waitFor(count: Int, timeout: Duration) async -> Bool { await base.waitFor(count: count, timeout: timeout) }
    func register(_ client: any ClientProxy) -> Result<Void, RegistrationRefusal> { base.register(client) }
    func unregister(id: String) { base.unregister(id: id) }
    func unregister(_ client: any ClientProxy) { base.unregister(client) }
    func replace(with client: any ClientProxy) -> (any ClientProxy)? { base.replace(with: client) }
}
