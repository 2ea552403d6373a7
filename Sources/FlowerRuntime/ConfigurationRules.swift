// The rules a server's or a simulation's settings must meet before anything starts: ranges, and
// the combinations that cannot run together (DP-FedAvg and update compression against secure
// aggregation, uniform sampling against DP-FedAvg's accountant, compression against virtual
// clients, an open listener against the exposure policy). `flwr server` and `flwr simulate` show
// the description as their usage error.
import Attacks
import CIFARLoader
import CNNModel
import FlowerCompat
import FlowerCore
import FlowerDeploy
import FlowerLearning
import FlowerTLS
import FlowerWire
import Foundation
import Logging
import Privacy

/// A setting, or a combination of settings, that cannot run; the description says which flag to change.
public enum ConfigurationError: Error, CustomStringConvertible, Equatable {
    /// `flag` must be `requirement` (e.g. "at least 1"); `value` is what was given.
    case outOfRange(flag: String, requirement: String, value: String)
    /// `flag` means something only beside `other`.
    case needs(flag: String, other: String)
    /// DP-FedAvg clips each client's update, which secure aggregation hides from the server.
    case dpFedAvgWithSecureAggregation
    /// Secure aggregation quantises and masks updates itself; there is nothing to decode.
    case updateCompressionWithSecureAggregation(UpdateCompression)
    /// DP-FedAvg's ε is accounted for Poisson sampling.
    case uniformSamplingWithDPFedAvg
    /// `--initial-model` is checked against the model built for the dataset.
    case initialModelWithoutDataset
    /// The exposure policy's refusal of an open listener (`ExposurePolicy`).
    case exposed(String)
    /// A simulation that cannot be set up as asked.
    case simulation(SimulationError)
    /// A `--partition-sizes` value that does not parse (the loader's message).
    case partitionSizes(String)
    /// Unequal sizes (`--partition-sizes`) beside a Dirichlet split, which draws its own sizes.
    case sizesWithDirichlet(sizes: String, alpha: Double)
    /// A server certificate names the addresses clients dial.
    case noServerName
    /// `flwr privacy epsilon` computes ε from a noise multiplier or solves for one.
    case noiseMultiplierOrTargetEpsilon
    /// `flag` is refused beside the others given; `reason` says why and what to do instead.
    case conflict(flag: String, reason: String)
    /// A `[IPv6]` address not followed by `:PORT`.
    case ipv6WithoutPort(String)
    /// Settings the component that owns them refuses, in its own words (FedBuff's `problem`).
    case refused(String)

    public var description: String {
        switch self {
        case .outOfRange(let flag, let requirement, let value):
            return "\(flag) must be \(requirement), got \(value)"
        case .needs(let flag, let other):
            return "\(flag) needs \(other)"
        case .dpFedAvgWithSecureAggregation:
            return "DP-FedAvg (--dp-noise-multiplier) clips each client's own update on the server, which --secagg hides from it; with --secagg use record-level DP on the clients (--dp-sgd), which composes with it"
        case .updateCompressionWithSecureAggregation(let compression):
            return "--update-compression \(compression) cannot be combined with --secagg: secure aggregation already quantises every update into its own field (--secagg-quantization-range) and masks it, so the server never sees an update to decode; drop one of the two"
        case .uniformSamplingWithDPFedAvg:
            return "--sampling uniform: DP-FedAvg's ε (--dp-noise-multiplier) is accounted for Poisson sampling (each client independently with probability q), which a fixed-size uniform sample does not satisfy; drop --sampling (DP-FedAvg samples poisson) or DP"
        case .initialModelWithoutDataset:
            return InitialModelError().description
        case .exposed(let refusal), .refused(let refusal):
            return refusal
        case .simulation(let error):
            return error.description
        case .partitionSizes(let message):
            return message
        case .sizesWithDirichlet(let sizes, let alpha):
            return "--partition-sizes \(sizes) sizes an IID split; the Dirichlet split (--alpha \(alpha)) already draws every partition's size along with its labels: drop --alpha (simulate: --alpha 0) for lognormal sizes, or --partition-sizes for label skew"
        case .noServerName:
            return "give at least one --server-name: the DNS name or IP address clients dial (e.g. --server-name flwr-server --server-name 127.0.0.1)"
        case .noiseMultiplierOrTargetEpsilon:
            return "give --noise-multiplier to compute ε, or --target-epsilon to solve for the noise multiplier"
        case .conflict(let flag, let reason):
            return "\(flag) \(reason)"
        case .ipv6WithoutPort(let address):
            return "--server \(address): expected [IPv6]:PORT"
        }
    }

    /// Throws `.outOfRange` unless `ok`.
    static func require(_ ok: Bool, _ flag: String, _ requirement: String, _ value: some Any) throws(ConfigurationError) {
        if !ok { throw .outOfRange(flag: flag, requirement: requirement, value: "\(value)") }
    }

    /// What secure aggregation refuses beside it: DP-FedAvg's server-side clipping and update compression.
    static func checkSecureAggregation(_ strategy: StrategySettings, dpFedAvg: Bool,
                                       updateCompression: UpdateCompression) throws(ConfigurationError) {
        guard strategy.secureAggregation != nil else { return }
        if dpFedAvg { throw .dpFedAvgWithSecureAggregation }
        if updateCompression != .none { throw .updateCompressionWithSecureAggregation(updateCompression) }
    }
}

extension ServerRuntimeConfig {
    /// Checks the settings that involve more than one flag, and the exposure policy, before any data is loaded.
    public func validate() throws(ConfigurationError) {
        let f = federation
        try ConfigurationError.require(f.rounds >= 1, "--rounds", "at least 1", f.rounds)
        try ConfigurationError.require(f.fractionFit > 0 && f.fractionFit <= 1, "--fraction-fit", "in (0, 1]", f.fractionFit)
        if let m = f.minFitClients { try ConfigurationError.require(m >= 1, "--min-fit-clients", "at least 1", m) }
        try ConfigurationError.require(f.roundAttempts >= 1, "--round-attempts", "at least 1", f.roundAttempts)
        try ConfigurationError.require((0 ... 65535).contains(wire.port), "--port", "in 0...65535", wire.port)
        if let m = wire.maxClients { try ConfigurationError.require(m >= 1, "--max-clients", "at least 1", m) }
        if let problem = fedBuff?.problem { throw .refused(problem) }
        try ConfigurationError.require(wire.maxConnections >= 1, "--max-connections", "at least 1", wire.maxConnections)
        try ConfigurationError.require(wire.maxPendingHandshakes >= 1, "--max-handshakes", "at least 1", wire.maxPendingHandshakes)
        try ConfigurationError.require(wire.maxPendingHandshakesPerAddress >= 1, "--max-handshakes-per-address", "at least 1",
                                       wire.maxPendingHandshakesPerAddress)
        try ConfigurationError.require(wire.maxBufferedPayloads >= 1, "--max-buffered-payloads", "at least 1", wire.maxBufferedPayloads)
        if let p = flower?.port { try ConfigurationError.require((0 ... 65535).contains(p), "--flower-port", "in 0...65535", p) }
        try ConfigurationError.require(minClients >= 1, "--min-clients", "at least 1", minClients)
        if resume && checkpointDir == nil { throw .needs(flag: "--resume", other: "--checkpoint-dir") }
        if initialModel != nil && dataset == "none" { throw .initialModelWithoutDataset }
        try ConfigurationError.require(threads >= 1, "--threads", "at least 1", threads)
        try ConfigurationError.checkSecureAggregation(strategy, dpFedAvg: dpFedAvg != nil, updateCompression: wire.updateCompression)
        try ops.validate()
        try security.validate()
        if let refusal = security.exposureRefusal(host: wire.host) { throw .exposed(refusal) }
        if let refusal = ExposurePolicy.flowerPortRefusal(host: wire.host, port: flower?.port, tls: flower?.tls != nil,
                                                          insecure: security.insecure) {
            throw .exposed(refusal)
        }
    }
}

extension SimulationConfig {
    /// Checks the settings that involve more than one flag before the dataset is loaded.
    public func validate() throws(ConfigurationError) {
        if mode == .async, let problem = fedBuff.problem { throw .simulation(.asyncUnsupported(problem)) }
        if let problem = Self.checkpointProblem(checkpointDir: checkpointDir, resume: resume) { throw .simulation(.resumeRefused(problem)) }
        try dpSGD?.validateForSite()
        try ConfigurationError.require(clients >= 1, "--clients", "at least 1", clients)
        try ConfigurationError.require(rounds >= 1, "--rounds", "at least 1", rounds)
        try ConfigurationError.require(alpha >= 0 && alpha.isFinite, "--alpha", "0 (IID) or positive", alpha)
        try ConfigurationError.require(fractionFit > 0 && fractionFit <= 1, "--fraction-fit", "in (0, 1]", fractionFit)
        if let m = clientsPerRound {
            try ConfigurationError.require(m >= 1 && m <= clients, "--clients-per-round", "between 1 and --clients (\(clients))", m)
        }
        if sampling == .uniform && dpFedAvg != nil { throw .uniformSamplingWithDPFedAvg }
        if let p = parallel { try ConfigurationError.require(p >= 1, "--parallel", "at least 1", p) }
        if let m = maxTrainExamples { try ConfigurationError.require(m >= 1, "--max-train-examples", "at least 1", m) }
        try ConfigurationError.require(malicious >= 0, "--malicious", "0 or more", malicious)
        if malicious > 0 && attack == nil { throw .needs(flag: "--malicious \(malicious)", other: "--attack KIND") }
        try ConfigurationError.require(clientAvailability > 0 && clientAvailability <= 1, "--client-availability", "in (0, 1]", clientAvailability)
        try ConfigurationError.require(secondsPerExample > 0 && secondsPerExample.isFinite, "--seconds-per-example", "a positive number", secondsPerExample)
        try ConfigurationError.checkSecureAggregation(strategy, dpFedAvg: dpFedAvg != nil, updateCompression: updateCompression)
        if transport == .virtual && (updateCompression != .none || broadcastCompression != .none || !zlib) {
            throw .simulation(.updateCompressionNeedsTCP)
        }
    }
}

/// Splits HOST:PORT (IPv6 as [addr]:port; a bare HOST gets port 8080), as `--server` and
/// `--flower-server` take it.
public func parseHostPort(_ s: String) throws(ConfigurationError) -> (host: String, port: Int) {
    var host = s
    var portText = ""
    if s.hasPrefix("["), let close = s.firstIndex(of: "]") {
        host = String(s[s.index(after: s.startIndex) ..< close])
        let rest = s[s.index(after: close)...]
        guard rest.hasPrefix(":") else { throw .ipv6WithoutPort(s) }
        portText = String(rest.dropFirst())
    } else if let colon = s.lastIndex(of: ":") {
        host = String(s[..<colon])
        portText = String(s[s.index(after: colon)...])
    } else {
        portText = "8080"
    }
    guard !host.isEmpty, let port = Int(portText), (1 ... 65535).contains(port) else {
        throw .outOfRange(flag: "--server", requirement: "HOST:PORT with a port in 1...65535", value: s)
    }
    return (host, port)
}

/// Parses a `--partition-sizes` value and refuses unequal sizes beside a Dirichlet split (`alpha` > 0).
@discardableResult
public func validatePartitionSizes(_ text: String, alpha: Double) throws(ConfigurationError) -> PartitionSizes {
    let sizes: PartitionSizes
    do { sizes = try PartitionSizes(parsing: text) } catch { throw .partitionSizes("\(error)") }
    if sizes != .equal && alpha > 0 { throw .sizesWithDirichlet(sizes: text, alpha: alpha) }
    return sizes
}

extension DataPrivacy {
    /// Checks ε, the budget and the noise seed against each other.
    public func validate() throws(ConfigurationError) {
        if let e = epsilon { try ConfigurationError.require(e > 0 && e.isFinite, "--dp-epsilon", "a positive number", e) }
        if let b = budget { try ConfigurationError.require(b > 0, "--privacy-budget", "a positive number", b) }
        if epsilon == nil && (budget != nil || seed != nil) { throw .conflict(flag: "--privacy-budget and --dp-seed", reason: "need --dp-epsilon") }
        if let e = epsilon, let b = budget, e > b {
            throw .conflict(flag: "--dp-epsilon \(e)", reason: "exceeds --privacy-budget \(b); lower ε or raise the budget")
        }
    }
}

extension PrivateReleaseConfig {
    /// Checks the release's partition and seed; `asksForSplit`: --num-partitions or --alpha was given.
    public func validate(asksForSplit: Bool) throws(ConfigurationError) {
        guard privacy.epsilon != nil else { throw .needs(flag: "flwr privatize", other: "--dp-epsilon") }
        if let partition, !(partition >= 0 && partition < numPartitions) {
            throw .conflict(flag: "--partition \(partition)", reason: "is outside 0..<\(numPartitions) (--num-partitions)")
        }
        if partition == nil && asksForSplit {
            throw .conflict(flag: "--num-partitions/--alpha", reason: "split the dataset: say which part to release with --partition N, or drop them to release the whole of --data-dir")
        }
        if resume && privacy.seed != nil {
            throw .conflict(flag: "--resume", reason: "re-uses the seed the ledger recorded; drop --dp-seed (or --resume)")
        }
    }
}

extension DeployRenderConfig {
    /// Checks the overrides of the descriptor's namespace and image.
    public func validate() throws(ConfigurationError) {
        if let namespace, !isDNSLabel(namespace, startsWithLetter: false) || namespace.count > 63 {
            throw .conflict(flag: "--namespace \"\(namespace)\"", reason: "is not a Kubernetes namespace name; use lowercase letters, digits and '-' (at most 63)")
        }
        if let image, image.isEmpty || image.contains(where: \.isWhitespace) {
            throw .conflict(flag: "--image \"\(image)\"", reason: "is not an image reference; e.g. registry.example/flwr:0.1.0")
        }
    }
}

/// Which mechanism `flwr privacy epsilon` accounts for.
public enum EpsilonMechanism: String, Sendable, CaseIterable {
    case dpFedAvg = "dp-fedavg"
    case dpSGD = "dp-sgd"
}

/// One `flwr privacy epsilon` question, checked: DP-FedAvg rounds or one site's DP-SGD epochs.
public struct EpsilonQuestion: Sendable {
    public var mechanism: EpsilonMechanism
    public var noiseMultiplier: Double?
    public var targetEpsilon: Double?
    public var samplingRate: Double?
    public var rounds: Int?
    public var datasetSize: Int?
    public var batchSize: Int?
    public var epochs: Int?
    public var delta: Double

    public init(mechanism: EpsilonMechanism, noiseMultiplier: Double?, targetEpsilon: Double?, samplingRate: Double?,
                rounds: Int?, datasetSize: Int?, batchSize: Int?, epochs: Int?, delta: Double) {
        self.mechanism = mechanism; self.noiseMultiplier = noiseMultiplier; self.targetEpsilon = targetEpsilon
        self.samplingRate = samplingRate; self.rounds = rounds; self.datasetSize = datasetSize
        self.batchSize = batchSize; self.epochs = epochs; self.delta = delta
    }

    /// Checks that the question has what its mechanism needs.
    public func validate() throws(ConfigurationError) {
        if noiseMultiplier == nil && targetEpsilon == nil {
            throw .noiseMultiplierOrTargetEpsilon
        }
        if noiseMultiplier != nil && targetEpsilon != nil {
            throw .conflict(flag: "--noise-multiplier and --target-epsilon", reason: "exclude each other: the second solves for the first")
        }
        switch mechanism {
        case .dpFedAvg:
            guard samplingRate != nil else { throw .needs(flag: "dp-fedavg", other: "--sampling-rate") }
            guard let rounds, rounds >= 1 else { throw .needs(flag: "dp-fedavg", other: "--rounds of at least 1") }
        case .dpSGD:
            guard let epochs, epochs >= 1 else { throw .needs(flag: "dp-sgd", other: "--epochs of at least 1") }
            guard samplingRate != nil || (datasetSize != nil && batchSize != nil) else {
                throw .needs(flag: "dp-sgd", other: "--dataset-size and --batch-size, or --sampling-rate")
            }
        }
    }

    /// The answer as the lines the command prints (one JSON object with `json`).
    public func report(json: Bool) throws(PrivacyError) -> [String] {
        if mechanism == .dpSGD {
            return [try DPSGDPrivacyPlan(samplingRate: samplingRate, datasetSize: datasetSize, batchSize: batchSize,
                                         epochs: epochs ?? 0, noiseMultiplier: noiseMultiplier,
                                         targetEpsilon: targetEpsilon, delta: delta).report(json: json)]
        }
        return try PrivacyPlan(noiseMultiplier: noiseMultiplier, targetEpsilon: targetEpsilon,
                               samplingRate: samplingRate ?? 0, rounds: rounds ?? 0, delta: delta).report(json: json)
    }
}

extension TensorShape {
    /// Parses `--input`: CxHxW (e.g. 1x28x28) for images, F (e.g. 30) for features.
    public init(parsing input: String) throws(ConfigurationError) {
        let parts = input.lowercased().split(separator: "x", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard parts.allSatisfy({ ($0 ?? 0) >= 1 }) else {
            throw .conflict(flag: "--input \(input)", reason: "is not a shape; write CxHxW (e.g. 1x28x28) or a feature count (e.g. 30), every size >= 1")
        }
        let sizes = parts.compactMap { $0 }
        switch sizes.count {
        case 1: self = .vector(sizes[0])
        case 3: self = .image(channels: sizes[0], height: sizes[1], width: sizes[2])
        default: throw .conflict(flag: "--input \(input)", reason: "has \(sizes.count) sizes; write CxHxW (e.g. 1x28x28) or a feature count (e.g. 30)")
        }
    }
}

/// Parses `--hidden`: positive layer sizes separated by commas (e.g. 256,128).
public func parseHiddenSizes(_ hidden: String) throws(ConfigurationError) -> [Int] {
    let parts = hidden.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
    let sizes = parts.compactMap { Int($0) }
    guard !parts.isEmpty, sizes.count == parts.count, sizes.allSatisfy({ $0 >= 1 }) else {
        throw .outOfRange(flag: "--hidden", requirement: "positive integers separated by commas (e.g. 256,128)", value: hidden)
    }
    return sizes
}

extension ServerSecurityConfig {
    /// Checks that the TLS files come in the pairs TLS and mutual TLS need.
    public func validate() throws(ConfigurationError) {
        guard (tlsCert == nil) == (tlsKey == nil) else {
            throw .conflict(flag: "--tls-cert and --tls-key", reason: "go together: give both (DIR/server.pem and DIR/server.key from `flwr certs`) or neither")
        }
        if tlsClientCA != nil && tlsCert == nil {
            throw .needs(flag: "--tls-client-ca (mutual TLS)", other: "--tls-cert and --tls-key: the server must speak TLS first")
        }
        if tlsRevoked != nil && tlsClientCA == nil {
            throw .conflict(flag: "--tls-revoked", reason: "lists client identities, which only mutual TLS proves: add --tls-client-ca")
        }
    }
}

extension ClientSecurityConfig {
    /// Checks that the client's certificate comes with its key, and both with the CA that turns TLS on.
    public func validate() throws(ConfigurationError) {
        guard (tlsCert == nil) == (tlsKey == nil) else {
            throw .conflict(flag: "--tls-cert and --tls-key", reason: "go together: give both (DIR/client-i.pem and DIR/client-i.key from `flwr certs`) or neither")
        }
        if tlsCA == nil && (tlsCert != nil || tlsServerName != nil) {
            throw .conflict(flag: "--tls-cert, --tls-key and --tls-server-name", reason: "need --tls-ca (the CA that signed the server's certificate)")
        }
    }
}

extension OpsConfig {
    /// Checks the operations listener's port and that a bind address comes with it.
    public func validate() throws(ConfigurationError) {
        if let p = port { try ConfigurationError.require((0 ... 65535).contains(p), "--http-port", "in 0...65535", p) }
        if host != nil && port == nil { throw .needs(flag: "--http-host", other: "--http-port") }
    }
}

extension DPSGDOptions {
    /// Checks σ (or the budget to solve it from), the clip norm, δ, the sampling rate and the physical batch.
    public func validate() throws(ConfigurationError) {
        if noiseMultiplier == nil && targetEpsilon == nil {
            throw .needs(flag: "--dp-sgd", other: "--noise-multiplier σ, or --target-epsilon to solve for it")
        }
        if let z = noiseMultiplier { try ConfigurationError.require(z.isFinite && z >= 0, "--noise-multiplier", "a number >= 0", z) }
        try ConfigurationError.require(maxGradNorm.isFinite && maxGradNorm > 0, "--max-grad-norm", "a positive number", maxGradNorm)
        if let e = targetEpsilon { try ConfigurationError.require(e.isFinite && e > 0, "--target-epsilon", "a positive number", e) }
        try ConfigurationError.require(delta > 0 && delta < 1, "--delta", "in (0, 1)", delta)
        if let q = samplingRate { try ConfigurationError.require(q > 0 && q <= 1, "--sampling-rate", "in (0, 1]", q) }
        try ConfigurationError.require(physicalBatch >= 1 && physicalBatch <= 1 << 20, "--physical-batch", "in 1...1048576", physicalBatch)
    }

    /// A federated site needs both σ and its budget over all rounds up front.
    public func validateForSite() throws(ConfigurationError) {
        if noiseMultiplier == nil || targetEpsilon == nil {
            throw .needs(flag: "a DP-SGD site", other: "--noise-multiplier σ and --target-epsilon (its budget over all rounds)")
        }
    }
}

extension AttackSettings {
    /// The attack `flwr client --attack` (and `flwr simulate --malicious`) runs, or nil for an honest client.
    public init?(attack: String?, scale: Double, claimedExamples: Int, seed: UInt64) throws(ConfigurationError) {
        let kinds = AttackKind.allCases.map(\.rawValue).joined(separator: ", ")
        if let a = attack, AttackKind(rawValue: a) == nil { throw .conflict(flag: "unknown --attack \(a);", reason: "choose one of \(kinds)") }
        try ConfigurationError.require(scale.isFinite && scale >= 0, "--attack-scale", "a finite number ≥ 0", scale)
        try ConfigurationError.require(claimedExamples >= 1, "--claimed-examples", "at least 1", claimedExamples)
        guard let kind = attack.flatMap(AttackKind.init(rawValue:)) else { return nil }
        self.init(kind: kind, scale: scale, claimedExamples: claimedExamples, seed: seed)
    }
}

extension FederationCertificates {
    /// Checks what `flwr certs` is asked to issue before any key is made.
    public static func validate(serverNames: [String], clients: Int, leafDays: Int, caDays: Int) throws(ConfigurationError) {
        guard !serverNames.isEmpty else {
            throw .noServerName
        }
        try ConfigurationError.require(clients >= 0 && clients <= 100_000, "--clients", "in 0...100000", clients)
        try ConfigurationError.require(leafDays >= 1, "--days", "at least 1", leafDays)
        guard caDays >= leafDays else { throw .conflict(flag: "--ca-days (\(caDays))", reason: "must be at least --days (\(leafDays))") }
    }
}

extension ClientRuntimeConfig {
    /// Checks the client's ranges, its DP-SGD budget, its slowdown, TLS files and operations listener before it connects.
    public func validate() throws(ConfigurationError) {
        try dpSGD?.validateForSite()
        if let m = maxTrainExamples { try ConfigurationError.require(m >= 1, "--max-train-examples", "at least 1", m) }
        if let problem = SlowedClient.problem(factor: slowdown) { throw .refused(problem) }
        try security.validate()
        try ops.validate()
    }
}

extension DPFedAvgConfig {
    /// DP-FedAvg from its flags (`--dp-noise-multiplier` z, `--dp-clip` C, `--dp-target-quantile`, ...), or nil
    /// without z; refuses the flags that mean something only with z, and z without a clipping norm.
    public init?(noiseMultiplier: Double?, clip: Double?, targetQuantile: Double?, clipLearningRate: Double,
                 clippedCountStddev: Double?, delta: Double, targetEpsilon: Double?, samplingRate q: Double) throws(ConfigurationError) {
        guard let z = noiseMultiplier else {
            let dpOnly = [("--dp-clip", clip != nil), ("--dp-target-quantile", targetQuantile != nil),
                          ("--dp-clipped-count-stddev", clippedCountStddev != nil), ("--dp-target-epsilon", targetEpsilon != nil)]
            if let flag = dpOnly.first(where: \.1)?.0 { throw .needs(flag: flag, other: "--dp-noise-multiplier (DP-FedAvg is off without it)") }
            return nil
        }
        let clipping: DPClipping
        if let gamma = targetQuantile {
            clipping = .adaptive(initial: clip ?? 0.1, targetQuantile: gamma, learningRate: clipLearningRate,
                                 clippedCountStddev: clippedCountStddev)
        } else if let clip {
            clipping = .fixed(clipNorm: clip)
        } else {
            throw .needs(flag: "DP-FedAvg", other: "a clipping norm: --dp-clip C (fixed), or --dp-target-quantile for adaptive clipping")
        }
        self.init(noiseMultiplier: z, clipping: clipping, samplingRate: q, delta: delta, targetEpsilon: targetEpsilon)
    }
}

extension SecAggConfig {
    /// Secure aggregation from its flags, or nil without `--secagg`; refuses `--secagg-*` settings without it.
    public init?(enabled: Bool, numShares: Int?, reconstructionThreshold: Int?, clippingRange: Double,
                 quantizationRange: UInt64?, maxWeight: UInt64) throws(ConfigurationError) {
        guard enabled else {
            let secaggOnly = [("--secagg-num-shares", numShares != nil),
                              ("--secagg-reconstruction-threshold", reconstructionThreshold != nil),
                              ("--secagg-quantization-range", quantizationRange != nil)]
            if let flag = secaggOnly.first(where: \.1)?.0 { throw .needs(flag: flag, other: "--secagg") }
            return nil
        }
        self.init(numShares: numShares, reconstructionThreshold: reconstructionThreshold, clippingRange: clippingRange,
                  quantizationRange: quantizationRange, maxWeight: maxWeight)
    }
}

extension DPSGDOptions {
    /// DP-SGD from its flags, checked, or nil without `--dp-sgd`; refuses its settings without it.
    public init?(enabled: Bool, maxGradNorm: Double, noiseMultiplier: Double?, targetEpsilon: Double?, delta: Double,
                 samplingRate: Double?, physicalBatch: Int) throws(ConfigurationError) {
        guard enabled else {
            let only = [("--noise-multiplier", noiseMultiplier != nil), ("--target-epsilon", targetEpsilon != nil),
                        ("--sampling-rate", samplingRate != nil)]
            if let flag = only.first(where: \.1)?.0 { throw .needs(flag: flag, other: "--dp-sgd") }
            return nil
        }
        self.init(maxGradNorm: maxGradNorm, noiseMultiplier: noiseMultiplier, targetEpsilon: targetEpsilon, delta: delta,
                  samplingRate: samplingRate, physicalBatch: physicalBatch)
        try validate()
    }
}

extension FlowerCompatServerConfig {
    /// The Flower-protocol listener of `--flower-port` (nil without it), its message limit in MB and TLS pair
    /// (the port's range is `ServerRuntimeConfig.validate()`'s).
    public init?(port: Int?, maxMessageMb: Int, tlsCert: String?, tlsKey: String?) throws(ConfigurationError) {
        try ConfigurationError.require((1 ... 2047).contains(maxMessageMb), "--flower-max-message-mb", "in 1...2047", maxMessageMb)
        if (tlsCert == nil) != (tlsKey == nil) {
            throw .conflict(flag: "--flower-tls-cert and --flower-tls-key", reason: "go together; give both or neither")
        }
        if tlsCert != nil && port == nil { throw .needs(flag: "--flower-tls-cert", other: "--flower-port") }
        for path in [tlsCert, tlsKey].compactMap({ $0 }) where !FileManager.default.isReadableFile(atPath: path) {
            throw .conflict(flag: "cannot read \(path)", reason: "(--flower-tls-cert/--flower-tls-key); check the path")
        }
        guard let port else { return nil }
        self.init(port: port, maxMessageBytes: maxMessageMb << 20)
        if let tlsCert, let tlsKey { tls = (tlsCert, tlsKey) }
    }
}

extension FlowerCompatClientConfig {
    /// Joining the Flower server at `--flower-server` HOST:PORT (nil without it), with its message limit in MB and root certificate.
    public init?(server: String?, maxMessageMb: Int, rootCertificate: String?) throws(ConfigurationError) {
        var address: (host: String, port: Int)?
        if let server { address = try parseHostPort(server) }
        try ConfigurationError.require((1 ... 2047).contains(maxMessageMb), "--flower-max-message-mb", "in 1...2047", maxMessageMb)
        if rootCertificate != nil && server == nil { throw .needs(flag: "--flower-root-cert", other: "--flower-server") }
        guard let address else { return nil }
        self.init(host: address.host, port: address.port)
        maxMessageBytes = maxMessageMb << 20
        self.rootCertificate = rootCertificate
    }
}

extension Partitioner {
    /// The split of a client's or a release's dataset: Dirichlet with `--alpha` (re-drawn until every
    /// partition has `--min-partition-size`), else IID sized by `--partition-sizes`; checks `--num-partitions` too.
    public init(numPartitions: Int, alpha: Double?, minPartitionSize: Int, partitionSizes: String) throws(ConfigurationError) {
        try ConfigurationError.require(numPartitions >= 1, "--num-partitions", "at least 1", numPartitions)
        if let a = alpha {
            try ConfigurationError.require(a > 0 && a.isFinite, "--alpha", "a positive number (0.1 very skewed, 1000 nearly IID)", a)
        }
        try ConfigurationError.require(minPartitionSize >= 0, "--min-partition-size", "0 or more", minPartitionSize)
        let sizes = try validatePartitionSizes(partitionSizes, alpha: alpha ?? 0)
        self = alpha.map { .dirichlet(alpha: $0, minPartitionSize: minPartitionSize) } ?? .iid(sizes: sizes)
    }
}

extension TrainingDefaults {
    /// A site's local training settings from its flags (learning rate, momentum and weight decay as given, in double precision), checked.
    public init(epochs: Int, batchSize: Int, lr: Double, momentum: Double, weightDecay: Double, seed: UInt64) throws(ConfigurationError) {
        try ConfigurationError.require(epochs >= 1, "--epochs", "at least 1", epochs)
        try ConfigurationError.require(batchSize >= 1, "--batch-size", "at least 1", batchSize)
        try ConfigurationError.require(lr > 0 && lr.isFinite, "--lr", "a positive number", lr)
        try ConfigurationError.require(momentum >= 0 && momentum < 1, "--momentum", "in [0, 1)", momentum)
        try ConfigurationError.require(weightDecay >= 0, "--weight-decay", "0 or more", weightDecay)
        self.init(epochs: epochs, batchSize: batchSize, learningRate: Float(lr), momentum: Float(momentum),
                  weightDecay: Float(weightDecay), seed: seed)
    }
}

extension WireServerConfig {
    /// `flwr server`'s listener from its flags, sizes in the flags' units (MB, seconds), checked
    /// where the conversion needs it (the other ranges are `ServerRuntimeConfig.validate()`'s);
    /// pending handshakes are capped at `maxConnections`, buffered payloads default to 2 × cores.
    public init(host: String, port: Int, authToken: String?, maxFrameMb: Int, maxClients: Int?, maxConnections: Int, maxHandshakes: Int,
                maxHandshakesPerAddress: Int, handshakeTimeout: Double, maxBufferedPayloads: Int?) throws(ConfigurationError) {
        try ConfigurationError.require(maxFrameMb >= 1 && maxFrameMb <= 4095, "--max-frame-mb", "in 1...4095", maxFrameMb)
        try ConfigurationError.require(handshakeTimeout > 0 && handshakeTimeout <= 3600, "--handshake-timeout", "in (0, 3600] seconds", handshakeTimeout)
        self.init(host: host, port: port, authToken: authToken, maxFrameBytes: maxFrameMb << 20, maxClients: maxClients)
        self.maxConnections = maxConnections
        maxPendingHandshakes = min(maxHandshakes, maxConnections)
        maxPendingHandshakesPerAddress = maxHandshakesPerAddress
        self.handshakeTimeout = .milliseconds(Int64(handshakeTimeout * 1000))
        if let maxBufferedPayloads { self.maxBufferedPayloads = maxBufferedPayloads }
    }
}

extension FederationSettings {
    /// The server's round loop from its flags, the round deadline in seconds (checked before it becomes a `Duration`).
    public init(rounds: Int, fractionFit: Double, minFitClients: Int?, roundTimeout: Double, acceptFailures: Bool, roundAttempts: Int,
                seed: UInt64) throws(ConfigurationError) {
        try ConfigurationError.require(roundTimeout > 0, "--round-timeout", "positive seconds", roundTimeout)
        self.init()
        self.rounds = rounds; self.fractionFit = fractionFit; self.minFitClients = minFitClients
        self.roundTimeout = .milliseconds(Int64(roundTimeout * 1000)); self.acceptFailures = acceptFailures
        self.roundAttempts = roundAttempts; self.seed = seed
    }
}

/// The FitIns config `flwr server --epochs/--batch-size/--lr/--momentum` sends to every client
/// (a setting left out: each client's own flag).
public func fitInstructions(epochs: Int?, batchSize: Int?, lr: Double?, momentum: Double?) -> Config {
    var c: Config = [:]
    if let epochs { c["epochs"] = .int(Int64(epochs)) }
    if let batchSize { c["batch_size"] = .int(Int64(batchSize)) }
    if let lr { c["lr"] = .double(lr) }
    if let momentum { c["momentum"] = .double(momentum) }
    return c
}

/// `--log-level` and `--log-format` of the long-running commands: swift-log's level and whether lines are JSON.
public func logSettings(level: String, format: String) throws(ConfigurationError) -> (level: Logger.Level, json: Bool) {
    guard let parsed = Logger.Level(rawValue: level) else {
        throw .refused("--log-level must be one of trace, debug, info, notice, warning, error, critical; got \(level)")
    }
    try ConfigurationError.require(["text", "json"].contains(format), "--log-format", "text or json", format)
    return (parsed, format == "json")
}

extension ModelExport {
    /// `flwr export`'s format and class count checked, and its `--input` shape parsed.
    public static func inputShape(format: String, input: String, classes: Int) throws(ConfigurationError) -> TensorShape {
        guard format.lowercased() == "onnx" else { throw .refused("--format \(format) is not supported; the only export format is onnx") }
        let shape = try TensorShape(parsing: input)
        try ConfigurationError.require(classes >= 1, "--classes", "at least 1", classes)
        return shape
    }
}
