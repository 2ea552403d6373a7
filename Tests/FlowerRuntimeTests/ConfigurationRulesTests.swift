// The rules ServerRuntimeConfig.validate() and SimulationConfig.validate() apply before anything
// starts, checked on the library types (what `flwr server` and `flwr simulate` print as usage errors).
import Attacks
import CIFARLoader
import CNNModel
import FlowerCompat
import FlowerCore
import FlowerLearning
import FlowerTLS
import FlowerWire
import Foundation
import Logging
import Privacy
import Testing
@testable import FlowerRuntime

@Suite struct ConfigurationRulesTests {
    static let dp = DPFedAvgConfig(noiseMultiplier: 1, clipping: .fixed(clipNorm: 1), samplingRate: 0.1)

    static func secagg() -> StrategySettings {
        var s = StrategySettings()
        s.secureAggregation = SecAggConfig()
        return s
    }

    /// A server config that passes every rule: loopback, the defaults.
    static func server() -> ServerRuntimeConfig {
        ServerRuntimeConfig(wire: WireServerConfig(host: "127.0.0.1"), model: .reference)
    }

    static func simulation() -> SimulationConfig {
        SimulationConfig(dataset: DatasetLocation(kind: .fashionMNIST), model: .reference)
    }

    /// The first rule `config` breaks, or nil.
    static func refusal(_ validate: () throws -> Void) -> ConfigurationError? {
        do { try validate(); return nil } catch let error as ConfigurationError { return error } catch {
            Issue.record("not a ConfigurationError: \(error)"); return nil
        }
    }

    @Test func serverRangesAndPairs() {
        #expect(Self.refusal { try Self.server().validate() } == nil)
        var c = Self.server(); c.minClients = 0
        #expect(Self.refusal { try c.validate() }?.description == "--min-clients must be at least 1, got 0")
        c = Self.server(); c.resume = true
        #expect(Self.refusal { try c.validate() }?.description == "--resume needs --checkpoint-dir")
        c.checkpointDir = "/tmp/ckpt"
        #expect(Self.refusal { try c.validate() } == nil)
        c = Self.server(); c.initialModel = "w.npz"; c.dataset = "none"
        #expect(Self.refusal { try c.validate() } == .initialModelWithoutDataset)
        #expect(ConfigurationError.initialModelWithoutDataset.description.hasPrefix("--initial-model needs --dataset (not none)"))
        c = Self.server(); c.threads = 0
        #expect(Self.refusal { try c.validate() }?.description == "--threads must be at least 1, got 0")
    }

    @Test func secureAggregationRefusesDPFedAvgAndUpdateCompression() {
        var c = Self.server(); c.strategy = Self.secagg(); c.dpFedAvg = Self.dp
        let dp = Self.refusal { try c.validate() }
        #expect(dp == .dpFedAvgWithSecureAggregation)
        #expect(dp?.description.hasPrefix("DP-FedAvg (--dp-noise-multiplier) clips each client's own update on the server, which --secagg hides from it") == true)
        c.dpFedAvg = nil; c.wire.updateCompression = .int8
        let compression = Self.refusal { try c.validate() }
        #expect(compression == ConfigurationError.updateCompressionWithSecureAggregation(.int8))
        #expect(compression?.description.hasPrefix("--update-compression int8 cannot be combined with --secagg") == true)
        // Each one alone is accepted.
        c.strategy = StrategySettings()
        #expect(Self.refusal { try c.validate() } == nil)
        c.wire.updateCompression = .none; c.dpFedAvg = Self.dp
        #expect(Self.refusal { try c.validate() } == nil)
        c.strategy = Self.secagg(); c.dpFedAvg = nil
        #expect(Self.refusal { try c.validate() } == nil)
    }

    @Test func serverOpenOnANonLoopbackAddressIsRefused() {
        var c = Self.server(); c.wire.host = "0.0.0.0"
        guard case .exposed(let why) = Self.refusal({ try c.validate() }) else {
            Issue.record("an open server on 0.0.0.0 was accepted"); return
        }
        #expect(why.hasPrefix("refusing to listen on 0.0.0.0 without TLS or an auth token"))
        c.security.authTokenFile = "/run/secrets/token"
        #expect(Self.refusal { try c.validate() } == nil)
        c.security = ServerSecurityConfig(insecure: true)
        #expect(Self.refusal { try c.validate() } == nil)
    }

    @Test func simulationRangesAndCombinations() {
        #expect(Self.refusal { try Self.simulation().validate() } == nil)
        var c = Self.simulation(); c.clients = 0
        #expect(Self.refusal { try c.validate() }?.description == "--clients must be at least 1, got 0")
        c = Self.simulation(); c.rounds = 0
        #expect(Self.refusal { try c.validate() }?.description == "--rounds must be at least 1, got 0")
        c = Self.simulation(); c.alpha = -1
        #expect(Self.refusal { try c.validate() }?.description == "--alpha must be 0 (IID) or positive, got -1.0")
        c = Self.simulation(); c.fractionFit = 1.5
        #expect(Self.refusal { try c.validate() }?.description == "--fraction-fit must be in (0, 1], got 1.5")
        c = Self.simulation(); c.clientsPerRound = 11
        #expect(Self.refusal { try c.validate() }?.description == "--clients-per-round must be between 1 and --clients (10), got 11")
        c.clientsPerRound = 10
        #expect(Self.refusal { try c.validate() } == nil)
        c = Self.simulation(); c.parallel = 0
        #expect(Self.refusal { try c.validate() }?.description == "--parallel must be at least 1, got 0")
        c = Self.simulation(); c.maxTrainExamples = 0
        #expect(Self.refusal { try c.validate() }?.description == "--max-train-examples must be at least 1, got 0")
    }

    @Test func simulationSamplingCompressionAndTransport() {
        var c = Self.simulation(); c.dpFedAvg = Self.dp; c.sampling = .uniform
        let uniform = Self.refusal { try c.validate() }
        #expect(uniform == .uniformSamplingWithDPFedAvg)
        #expect(uniform?.description.contains("accounted for Poisson sampling") == true)
        c.sampling = .poisson
        #expect(Self.refusal { try c.validate() } == nil)
        c.strategy = Self.secagg()
        #expect(Self.refusal { try c.validate() } == .dpFedAvgWithSecureAggregation)
        c = Self.simulation(); c.strategy = Self.secagg(); c.updateCompression = .fp16
        #expect(Self.refusal { try c.validate() } == ConfigurationError.updateCompressionWithSecureAggregation(.fp16))
        c = Self.simulation(); c.transport = .virtual; c.broadcastCompression = .fp16
        #expect(Self.refusal { try c.validate() } == .simulation(.updateCompressionNeedsTCP))
        c.transport = .tcp
        #expect(Self.refusal { try c.validate() } == nil)
    }

    @Test func hostPortParses() throws {
        for (text, host, port) in [("flwr-server:9092", "flwr-server", 9092), ("[::1]:8081", "::1", 8081), ("10.0.0.5", "10.0.0.5", 8080)] {
            let parsed = try parseHostPort(text)
            #expect(parsed.host == host && parsed.port == port, "\(text)")
        }
        #expect(throws: ConfigurationError.ipv6WithoutPort("[::1]")) { try parseHostPort("[::1]") }
        for bad in ["host:0", "host:70000", ":80", "host:http"] {
            let error = Self.refusal { _ = try parseHostPort(bad) }
            #expect(error?.description == "--server must be HOST:PORT with a port in 1...65535, got \(bad)")
        }
    }

    /// Moved from flwr's ExportCommandTests: `--input` of `flwr export`.
    @Test func inputShapesParse() throws {
        #expect(try TensorShape(parsing: "3x32x32") == .image(channels: 3, height: 32, width: 32))
        #expect(try TensorShape(parsing: "30") == .vector(30))
        #expect(Self.refusal { _ = try TensorShape(parsing: "1x28") }?.description
            == "--input 1x28 has 2 sizes; write CxHxW (e.g. 1x28x28) or a feature count (e.g. 30)")
        #expect(Self.refusal { _ = try TensorShape(parsing: "0x28x28") }?.description.contains("every size >= 1") == true)
    }

    @Test func hiddenSizesAndPartitionSizes() throws {
        #expect(try parseHiddenSizes("256, 128") == [256, 128])
        #expect(Self.refusal { _ = try parseHiddenSizes("64,,8") }?.description
            == "--hidden must be positive integers separated by commas (e.g. 256,128), got 64,,8")
        #expect(try validatePartitionSizes("lognormal:1", alpha: 0) == .lognormal(sigma: 1))
        #expect(Self.refusal { _ = try validatePartitionSizes("lognormal:1", alpha: 0.5) }
            == .sizesWithDirichlet(sizes: "lognormal:1", alpha: 0.5))
        #expect(Self.refusal { _ = try validatePartitionSizes("zipf", alpha: 0) }?.description.contains("use equal or lognormal:σ") == true)
    }

    @Test func dataPrivacyAndReleaseRules() {
        #expect(Self.refusal { try DataPrivacy(epsilon: 1, budget: 2).validate() } == nil)
        #expect(Self.refusal { try DataPrivacy(epsilon: 0).validate() }?.description == "--dp-epsilon must be a positive number, got 0.0")
        #expect(Self.refusal { try DataPrivacy(seed: 7).validate() }?.description == "--privacy-budget and --dp-seed need --dp-epsilon")
        #expect(Self.refusal { try DataPrivacy(epsilon: 3, budget: 2).validate() }?.description
            == "--dp-epsilon 3.0 exceeds --privacy-budget 2.0; lower ε or raise the budget")
        var release = PrivateReleaseConfig(dataset: DatasetLocation(kind: .fashionMNIST), privacy: DataPrivacy(epsilon: 1), out: "/tmp/x")
        #expect(Self.refusal { try release.validate(asksForSplit: false) } == nil)
        #expect(Self.refusal { try release.validate(asksForSplit: true) }?.description.hasPrefix("--num-partitions/--alpha split the dataset") == true)
        release.partition = 10
        #expect(Self.refusal { try release.validate(asksForSplit: true) }?.description == "--partition 10 is outside 0..<10 (--num-partitions)")
        release.partition = 9; release.resume = true; release.privacy.seed = 1
        #expect(Self.refusal { try release.validate(asksForSplit: true) }?.description.hasPrefix("--resume re-uses the seed") == true)
        release.privacy = DataPrivacy()
        #expect(Self.refusal { try release.validate(asksForSplit: true) }?.description == "flwr privatize needs --dp-epsilon")
    }

    @Test func deployOverridesAndEpsilonQuestions() {
        var deploy = DeployRenderConfig(file: "d.yaml"); deploy.namespace = "Team_A"
        #expect(Self.refusal { try deploy.validate() }?.description.hasPrefix("--namespace \"Team_A\" is not a Kubernetes namespace name") == true)
        deploy.namespace = "team-a"; deploy.image = "a b"
        #expect(Self.refusal { try deploy.validate() }?.description.hasPrefix("--image \"a b\" is not an image reference") == true)
        deploy.image = "registry.example/flwr:0.1.0"
        #expect(Self.refusal { try deploy.validate() } == nil)
        var q = EpsilonQuestion(mechanism: .dpFedAvg, noiseMultiplier: 1, targetEpsilon: nil, samplingRate: 0.1, rounds: 10,
                                datasetSize: nil, batchSize: nil, epochs: nil, delta: 1e-5)
        #expect(Self.refusal { try q.validate() } == nil)
        q.targetEpsilon = 2
        #expect(Self.refusal { try q.validate() }?.description == "--noise-multiplier and --target-epsilon exclude each other: the second solves for the first")
        q.noiseMultiplier = nil; q.targetEpsilon = nil
        #expect(Self.refusal { try q.validate() } == .noiseMultiplierOrTargetEpsilon)
        q.noiseMultiplier = 1; q.rounds = 0
        #expect(Self.refusal { try q.validate() }?.description == "dp-fedavg needs --rounds of at least 1")
        q.mechanism = .dpSGD; q.epochs = 2; q.samplingRate = nil
        #expect(Self.refusal { try q.validate() }?.description == "dp-sgd needs --dataset-size and --batch-size, or --sampling-rate")
    }

    @Test func tlsPairsOpsListenerAndDPSGD() {
        #expect(Self.refusal { try ServerSecurityConfig(tlsCert: "s.pem").validate() }?.description.hasPrefix("--tls-cert and --tls-key go together: give both (DIR/server.pem") == true)
        #expect(Self.refusal { try ServerSecurityConfig(tlsClientCA: "ca.pem").validate() }?.description
            == "--tls-client-ca (mutual TLS) needs --tls-cert and --tls-key: the server must speak TLS first")
        #expect(Self.refusal { try ServerSecurityConfig(tlsCert: "s.pem", tlsKey: "s.key", tlsRevoked: "r.txt").validate() }?.description
            == "--tls-revoked lists client identities, which only mutual TLS proves: add --tls-client-ca")
        #expect(Self.refusal { try ServerSecurityConfig(tlsCert: "s.pem", tlsKey: "s.key", tlsClientCA: "ca.pem", tlsRevoked: "r.txt").validate() } == nil)
        #expect(Self.refusal { try ClientSecurityConfig(tlsKey: "c.key").validate() }?.description.hasPrefix("--tls-cert and --tls-key go together: give both (DIR/client-i.pem") == true)
        #expect(Self.refusal { try ClientSecurityConfig(tlsServerName: "flwr-server").validate() }?.description
            == "--tls-cert, --tls-key and --tls-server-name need --tls-ca (the CA that signed the server's certificate)")
        #expect(Self.refusal { try OpsConfig(port: 70000).validate() }?.description == "--http-port must be in 0...65535, got 70000")
        #expect(Self.refusal { try OpsConfig(host: "0.0.0.0").validate() } == .needs(flag: "--http-host", other: "--http-port"))
        #expect(Self.refusal { try OpsConfig(port: 0, host: "0.0.0.0").validate() } == nil)
        var dp = DPSGDOptions(maxGradNorm: 1, noiseMultiplier: nil, targetEpsilon: nil, delta: 1e-5, samplingRate: nil, physicalBatch: 256)
        #expect(Self.refusal { try dp.validate() }?.description == "--dp-sgd needs --noise-multiplier σ, or --target-epsilon to solve for it")
        dp.targetEpsilon = 3
        #expect(Self.refusal { try dp.validate() } == nil)
        #expect(Self.refusal { try dp.validateForSite() }?.description
            == "a DP-SGD site needs --noise-multiplier σ and --target-epsilon (its budget over all rounds)")
        dp.noiseMultiplier = 1
        #expect(Self.refusal { try dp.validateForSite() } == nil)
        dp.delta = 1
        #expect(Self.refusal { try dp.validate() }?.description == "--delta must be in (0, 1), got 1.0")
        dp.delta = 1e-5; dp.physicalBatch = 0
        #expect(Self.refusal { try dp.validate() }?.description == "--physical-batch must be in 1...1048576, got 0")
    }

    @Test func simulationAttackersAndVirtualClock() {
        var c = Self.simulation(); c.malicious = 2
        #expect(Self.refusal { try c.validate() }?.description == "--malicious 2 needs --attack KIND")
        c.attack = .init(kind: .signFlip)
        #expect(Self.refusal { try c.validate() } == nil)
        c = Self.simulation(); c.clientAvailability = 0
        #expect(Self.refusal { try c.validate() }?.description == "--client-availability must be in (0, 1], got 0.0")
        c = Self.simulation(); c.secondsPerExample = .infinity
        #expect(Self.refusal { try c.validate() }?.description == "--seconds-per-example must be a positive number, got inf")
    }

    @Test func attackFlagsAndCertificateRequests() throws {
        #expect(try AttackSettings(attack: nil, scale: 1, claimedExamples: 5, seed: 3) == nil)
        #expect(try AttackSettings(attack: "sign-flip", scale: 2, claimedExamples: 5, seed: 3)
            == AttackSettings(kind: .signFlip, scale: 2, claimedExamples: 5, seed: 3))
        #expect(Self.refusal { _ = try AttackSettings(attack: "noise", scale: 1, claimedExamples: 1, seed: 0) }?.description
            .hasPrefix("unknown --attack noise; choose one of sign-flip, ") == true)
        #expect(Self.refusal { _ = try AttackSettings(attack: nil, scale: -1, claimedExamples: 1, seed: 0) }?.description
            == "--attack-scale must be a finite number ≥ 0, got -1.0")
        #expect(Self.refusal { try FederationCertificates.validate(serverNames: [], clients: 2, leafDays: 1, caDays: 1) } == .noServerName)
        #expect(Self.refusal { try FederationCertificates.validate(serverNames: ["s"], clients: 2, leafDays: 30, caDays: 10) }?.description
            == "--ca-days (10) must be at least --days (30)")
        #expect(Self.refusal { try FederationCertificates.validate(serverNames: ["s"], clients: 2, leafDays: 30, caDays: 30) } == nil)
    }

    @Test func serverRoundConnectionAndFedBuffRanges() {
        var c = Self.server(); c.federation.rounds = 0
        #expect(Self.refusal { try c.validate() }?.description == "--rounds must be at least 1, got 0")
        c = Self.server(); c.federation.fractionFit = 1.5
        #expect(Self.refusal { try c.validate() }?.description == "--fraction-fit must be in (0, 1], got 1.5")
        c = Self.server(); c.federation.minFitClients = 0
        #expect(Self.refusal { try c.validate() }?.description == "--min-fit-clients must be at least 1, got 0")
        c = Self.server(); c.federation.roundAttempts = 0
        #expect(Self.refusal { try c.validate() }?.description == "--round-attempts must be at least 1, got 0")
        c = Self.server(); c.wire.port = 70000
        #expect(Self.refusal { try c.validate() }?.description == "--port must be in 0...65535, got 70000")
        c = Self.server(); c.wire.maxClients = 0
        #expect(Self.refusal { try c.validate() }?.description == "--max-clients must be at least 1, got 0")
        c = Self.server(); c.wire.maxConnections = 0
        #expect(Self.refusal { try c.validate() }?.description == "--max-connections must be at least 1, got 0")
        c = Self.server(); c.wire.maxPendingHandshakes = -1
        #expect(Self.refusal { try c.validate() }?.description == "--max-handshakes must be at least 1, got -1")
        c = Self.server(); c.wire.maxPendingHandshakesPerAddress = 0
        #expect(Self.refusal { try c.validate() }?.description == "--max-handshakes-per-address must be at least 1, got 0")
        c = Self.server(); c.wire.maxBufferedPayloads = 0
        #expect(Self.refusal { try c.validate() }?.description == "--max-buffered-payloads must be at least 1, got 0")
        c = Self.server(); c.flower = FlowerCompatServerConfig(port: 65536)
        #expect(Self.refusal { try c.validate() }?.description == "--flower-port must be in 0...65535, got 65536")
        c = Self.server(); c.fedBuff = FedBuffConfig(concurrency: 2, bufferSize: 3)
        #expect(Self.refusal { try c.validate() }?.description.hasPrefix("--buffer-size 3 exceeds --concurrency 2") == true)
        c.fedBuff = FedBuffConfig(concurrency: 2, bufferSize: 2, serverLearningRate: -1)
        #expect(Self.refusal { try c.validate() }?.description == "--server-learning-rate must be positive, got -1.0")
        c.fedBuff = FedBuffConfig(concurrency: 2, bufferSize: 2)
        #expect(Self.refusal { try c.validate() } == nil)
    }

    @Test func simulationCheckpointAndFedBuffRules() {
        var c = Self.simulation(); c.resume = true
        #expect(Self.refusal { try c.validate() }?.description
            == "--resume continues from the checkpoint in --checkpoint-dir: give the --checkpoint-dir of the interrupted run")
        c.checkpointDir = "/tmp/ckpt"
        #expect(Self.refusal { try c.validate() } == nil)
        // FedBuff's own ranges count only under --mode async.
        c = Self.simulation(); c.fedBuff = FedBuffConfig(concurrency: 1, bufferSize: 4)
        #expect(Self.refusal { try c.validate() } == nil)
        c.mode = .async
        #expect(Self.refusal { try c.validate() }?.description.hasPrefix("--buffer-size 4 exceeds --concurrency 1") == true)
    }

    /// A library caller that skips `validate()` gets the same refusal from the runtime, before
    /// anything is loaded, bound or read (the dataset folder and the descriptor do not exist).
    @Test func runtimesValidateTheirConfigFirst() async {
        let missing = "/nonexistent-\(UUID().uuidString)"
        var server = Self.server(); server.federation.rounds = 0; server.dataDir = missing
        await #expect(Self.asyncRefusal { _ = try await ServerRuntime(config: server, logger: Logger(label: "test")).run() }?.description
            == "--rounds must be at least 1, got 0")
        server = Self.server(); server.wire.host = "0.0.0.0"; server.dataDir = missing
        guard case .exposed = await Self.asyncRefusal({ _ = try await ServerRuntime(config: server, logger: Logger(label: "test")).run() }) else {
            Issue.record("ServerRuntime started an open server on 0.0.0.0"); return
        }
        var simulation = SimulationConfig(dataset: DatasetLocation(kind: .fashionMNIST, dataDir: missing), model: .reference)
        simulation.rounds = 0
        await #expect(Self.asyncRefusal { _ = try await Simulation(config: simulation, logger: Logger(label: "test")).runToEnd() }?.description
            == "--rounds must be at least 1, got 0")
        simulation.rounds = 1; simulation.resume = true
        await #expect(Self.asyncRefusal { _ = try await Simulation(config: simulation, logger: Logger(label: "test")).runToEnd() }?.description
            == "--resume continues from the checkpoint in --checkpoint-dir: give the --checkpoint-dir of the interrupted run")
        var deploy = DeployRenderConfig(file: missing); deploy.namespace = "Team_A"
        #expect(Self.refusal { try DeployRendering(config: deploy, note: { _ in }).run() }?.description
            .hasPrefix("--namespace \"Team_A\" is not a Kubernetes namespace name") == true)
    }

    @Test func clientConfigRules() {
        var c = ClientRuntimeConfig(dataset: DatasetLocation(kind: .fashionMNIST), model: .reference)
        #expect(Self.refusal { try c.validate() } == nil)
        c.maxTrainExamples = 0
        #expect(Self.refusal { try c.validate() }?.description == "--max-train-examples must be at least 1, got 0")
        c.maxTrainExamples = nil; c.slowdown = 0.5
        #expect(Self.refusal { try c.validate() }?.description.hasPrefix("--slowdown must be a finite factor of at least 1") == true)
        c.slowdown = 1; c.dpSGD = DPSGDOptions(maxGradNorm: 1, noiseMultiplier: 1, targetEpsilon: nil, delta: 1e-5, samplingRate: nil, physicalBatch: 256)
        #expect(Self.refusal { try c.validate() }?.description
            == "a DP-SGD site needs --noise-multiplier σ and --target-epsilon (its budget over all rounds)")
        c.dpSGD = nil; c.security = ClientSecurityConfig(tlsKey: "c.key")
        #expect(Self.refusal { try c.validate() }?.description.hasPrefix("--tls-cert and --tls-key go together") == true)
        c.security = ClientSecurityConfig(); c.ops = OpsConfig(host: "0.0.0.0")
        #expect(Self.refusal { try c.validate() } == .needs(flag: "--http-host", other: "--http-port"))
        var sim = Self.simulation(); sim.dpSGD = DPSGDOptions(maxGradNorm: 1, noiseMultiplier: nil, targetEpsilon: 2, delta: 1e-5, samplingRate: nil, physicalBatch: 256)
        #expect(Self.refusal { try sim.validate() }?.description
            == "a DP-SGD site needs --noise-multiplier σ and --target-epsilon (its budget over all rounds)")
    }

    /// The flag → configuration builders the commands call: the configuration, or nil when the
    /// switch is off, and the "needs" rules of the flags that mean something only with it.
    @Test func builtFromFlags() throws {
        let off = try DPFedAvgConfig(noiseMultiplier: nil, clip: nil, targetQuantile: nil, clipLearningRate: 0.2,
                                     clippedCountStddev: nil, delta: 1e-5, targetEpsilon: nil, samplingRate: 0.1)
        #expect(off == nil)
        #expect(Self.refusal { _ = try DPFedAvgConfig(noiseMultiplier: nil, clip: nil, targetQuantile: nil, clipLearningRate: 0.2,
                                                      clippedCountStddev: nil, delta: 1e-5, targetEpsilon: 3, samplingRate: 0.1) }?.description
            == "--dp-target-epsilon needs --dp-noise-multiplier (DP-FedAvg is off without it)")
        #expect(Self.refusal { _ = try DPFedAvgConfig(noiseMultiplier: 1, clip: nil, targetQuantile: nil, clipLearningRate: 0.2,
                                                      clippedCountStddev: nil, delta: 1e-5, targetEpsilon: nil, samplingRate: 0.1) }?.description
            == "DP-FedAvg needs a clipping norm: --dp-clip C (fixed), or --dp-target-quantile for adaptive clipping")
        let adaptive = try #require(try DPFedAvgConfig(noiseMultiplier: 1, clip: nil, targetQuantile: 0.5, clipLearningRate: 0.2,
                                                       clippedCountStddev: nil, delta: 1e-5, targetEpsilon: nil, samplingRate: 0.1))
        #expect(adaptive.clipping == .adaptive(initial: 0.1, targetQuantile: 0.5, learningRate: 0.2, clippedCountStddev: nil))
        #expect(adaptive.samplingRate == 0.1 && adaptive.noiseMultiplier == 1)

        #expect(try SecAggConfig(enabled: false, numShares: nil, reconstructionThreshold: nil, clippingRange: 8, quantizationRange: nil, maxWeight: 1000) == nil)
        #expect(Self.refusal { _ = try SecAggConfig(enabled: false, numShares: nil, reconstructionThreshold: 3, clippingRange: 8,
                                                    quantizationRange: nil, maxWeight: 1000) } == .needs(flag: "--secagg-reconstruction-threshold", other: "--secagg"))
        #expect(try SecAggConfig(enabled: true, numShares: 4, reconstructionThreshold: 3, clippingRange: 2, quantizationRange: nil, maxWeight: 10)
            == SecAggConfig(numShares: 4, reconstructionThreshold: 3, clippingRange: 2, maxWeight: 10))

        #expect(Self.refusal { _ = try DPSGDOptions(enabled: false, maxGradNorm: 1, noiseMultiplier: nil, targetEpsilon: nil, delta: 1e-5,
                                                    samplingRate: 0.1, physicalBatch: 256) } == .needs(flag: "--sampling-rate", other: "--dp-sgd"))
        #expect(Self.refusal { _ = try DPSGDOptions(enabled: true, maxGradNorm: 0, noiseMultiplier: 1, targetEpsilon: nil, delta: 1e-5,
                                                    samplingRate: nil, physicalBatch: 256) }?.description == "--max-grad-norm must be a positive number, got 0.0")

        #expect(try FlowerCompatServerConfig(port: nil, maxMessageMb: 512, tlsCert: nil, tlsKey: nil) == nil)
        let listener = try #require(try FlowerCompatServerConfig(port: 9092, maxMessageMb: 16, tlsCert: nil, tlsKey: nil))
        #expect(listener.port == 9092 && listener.maxMessageBytes == 16 << 20 && listener.tls == nil)
        #expect(Self.refusal { _ = try FlowerCompatServerConfig(port: 9092, maxMessageMb: 2048, tlsCert: nil, tlsKey: nil) }?.description
            == "--flower-max-message-mb must be in 1...2047, got 2048")
        #expect(Self.refusal { _ = try FlowerCompatServerConfig(port: nil, maxMessageMb: 512, tlsCert: "c.pem", tlsKey: "k.pem") }
            == .needs(flag: "--flower-tls-cert", other: "--flower-port"))
        #expect(Self.refusal { _ = try FlowerCompatServerConfig(port: 1, maxMessageMb: 512, tlsCert: "/nonexistent/c.pem", tlsKey: "/nonexistent/k.pem") }?.description
            == "cannot read /nonexistent/c.pem (--flower-tls-cert/--flower-tls-key); check the path")
        let join = try #require(try FlowerCompatClientConfig(server: "[::1]:9092", maxMessageMb: 8, rootCertificate: "ca.pem"))
        #expect(join.host == "::1" && join.port == 9092 && join.maxMessageBytes == 8 << 20 && join.rootCertificate == "ca.pem")
        #expect(Self.refusal { _ = try FlowerCompatClientConfig(server: nil, maxMessageMb: 512, rootCertificate: "ca.pem") }
            == .needs(flag: "--flower-root-cert", other: "--flower-server"))

        #expect(try Partitioner(numPartitions: 3, alpha: nil, minPartitionSize: 10, partitionSizes: "lognormal:1") == .iid(sizes: .lognormal(sigma: 1)))
        #expect(try Partitioner(numPartitions: 3, alpha: 0.5, minPartitionSize: 4, partitionSizes: "equal") == .dirichlet(alpha: 0.5, minPartitionSize: 4))
        #expect(Self.refusal { _ = try Partitioner(numPartitions: 0, alpha: nil, minPartitionSize: 10, partitionSizes: "equal") }?.description
            == "--num-partitions must be at least 1, got 0")
        #expect(Self.refusal { _ = try Partitioner(numPartitions: 3, alpha: 0, minPartitionSize: 10, partitionSizes: "equal") }?.description
            == "--alpha must be a positive number (0.1 very skewed, 1000 nearly IID), got 0.0")
        #expect(Self.refusal { _ = try Partitioner(numPartitions: 3, alpha: nil, minPartitionSize: -1, partitionSizes: "equal") }?.description
            == "--min-partition-size must be 0 or more, got -1")

        let training = try TrainingDefaults(epochs: 2, batchSize: 16, lr: 0.05, momentum: 0.5, weightDecay: 0.001, seed: 7)
        #expect(training.epochs == 2 && training.batchSize == 16 && training.learningRate == 0.05 && training.momentum == 0.5
            && training.weightDecay == 0.001 && training.seed == 7)
        // The range is checked on the value given, before it is rounded to float: 1 − 1e-12 is below 1.
        #expect(Self.refusal { _ = try TrainingDefaults(epochs: 1, batchSize: 32, lr: 0.01, momentum: 1 - 1e-12, weightDecay: 0, seed: 1) } == nil)
        #expect(Self.refusal { _ = try TrainingDefaults(epochs: 1, batchSize: 32, lr: .nan, momentum: 0.9, weightDecay: 0, seed: 1) }?.description
            == "--lr must be a positive number, got nan")
        #expect(Self.refusal { _ = try TrainingDefaults(epochs: 1, batchSize: 32, lr: 0.01, momentum: 1, weightDecay: 0, seed: 1) }?.description
            == "--momentum must be in [0, 1), got 1.0")
    }

    /// `flwr server`'s listener, round loop and FitIns config, its log flags and `flwr export`'s
    /// checks, built from the flags in their own units.
    @Test func serverListenerRoundLoopLogAndExportFromFlags() throws {
        let wire = try WireServerConfig(host: "127.0.0.1", port: 9000, authToken: "t", maxFrameMb: 16, maxClients: 5, maxConnections: 100,
                                        maxHandshakes: 1000, maxHandshakesPerAddress: 7, handshakeTimeout: 2.5, maxBufferedPayloads: 3)
        #expect(wire.host == "127.0.0.1" && wire.port == 9000 && wire.authToken == "t" && wire.maxFrameBytes == 16 << 20)
        #expect(wire.maxClients == 5 && wire.maxConnections == 100 && wire.maxPendingHandshakes == 100 && wire.maxPendingHandshakesPerAddress == 7)
        #expect(wire.handshakeTimeout == .milliseconds(2500) && wire.maxBufferedPayloads == 3)
        let defaults = try WireServerConfig(host: "h", port: 1, authToken: nil, maxFrameMb: 256, maxClients: nil, maxConnections: 10,
                                            maxHandshakes: 4, maxHandshakesPerAddress: 1, handshakeTimeout: 10, maxBufferedPayloads: nil)
        #expect(defaults.maxPendingHandshakes == 4 && defaults.maxBufferedPayloads == WireServerConfig().maxBufferedPayloads)
        #expect(Self.refusal { _ = try WireServerConfig(host: "h", port: 1, authToken: nil, maxFrameMb: 4096, maxClients: nil, maxConnections: 10,
                                                        maxHandshakes: 4, maxHandshakesPerAddress: 1, handshakeTimeout: 10, maxBufferedPayloads: nil) }?
            .description == "--max-frame-mb must be in 1...4095, got 4096")
        #expect(Self.refusal { _ = try WireServerConfig(host: "h", port: 1, authToken: nil, maxFrameMb: 1, maxClients: nil, maxConnections: 10,
                                                        maxHandshakes: 4, maxHandshakesPerAddress: 1, handshakeTimeout: .nan, maxBufferedPayloads: nil) }?
            .description == "--handshake-timeout must be in (0, 3600] seconds, got nan")

        let rounds = try FederationSettings(rounds: 3, fractionFit: 0.5, minFitClients: 2, roundTimeout: 1.25, acceptFailures: false,
                                            roundAttempts: 4, seed: 9)
        #expect(rounds.rounds == 3 && rounds.fractionFit == 0.5 && rounds.minFitClients == 2 && rounds.roundTimeout == .milliseconds(1250))
        #expect(!rounds.acceptFailures && rounds.roundAttempts == 4 && rounds.seed == 9)
        #expect(Self.refusal { _ = try FederationSettings(rounds: 1, fractionFit: 1, minFitClients: nil, roundTimeout: 0, acceptFailures: true,
                                                          roundAttempts: 1, seed: 1) }?.description == "--round-timeout must be positive seconds, got 0.0")

        #expect(fitInstructions(epochs: nil, batchSize: nil, lr: nil, momentum: nil).isEmpty)
        #expect(fitInstructions(epochs: 2, batchSize: nil, lr: 0.05, momentum: nil) == ["epochs": .int(2), "lr": .double(0.05)])

        let log = try logSettings(level: "debug", format: "json")
        #expect(log.level == .debug && log.json)
        #expect(Self.refusal { _ = try logSettings(level: "loud", format: "text") }?.description
            == "--log-level must be one of trace, debug, info, notice, warning, error, critical; got loud")
        #expect(Self.refusal { _ = try logSettings(level: "info", format: "xml") }?.description == "--log-format must be text or json, got xml")

        #expect(try ModelExport.inputShape(format: "ONNX", input: "3x32x32", classes: 10) == .image(channels: 3, height: 32, width: 32))
        #expect(Self.refusal { _ = try ModelExport.inputShape(format: "tflite", input: "30", classes: 2) }?.description
            == "--format tflite is not supported; the only export format is onnx")
        #expect(Self.refusal { _ = try ModelExport.inputShape(format: "onnx", input: "30", classes: 0) }?.description
            == "--classes must be at least 1, got 0")
    }

    static func asyncRefusal(_ run: () async throws -> Void) async -> ConfigurationError? {
        do { try await run(); return nil } catch let error as ConfigurationError { return error } catch {
            Issue.record("not a ConfigurationError: \(error)"); return nil
        }
    }
}
