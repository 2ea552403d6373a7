// Virtual clients: the sampler draws exactly --clients-per-round clients, uniformly (χ² over
// many rounds); the partitions are the TCP simulation's, held compactly; IID reaches beyond the
// example count and Dirichlet refuses it, naming the largest client count that works.
import CIFARLoader
import FedAvg
import FlowerCore
import FlowerLearning
import Foundation
import Logging
import Synchronization
import Testing
@testable import FlowerRuntime

struct VirtualClientsTests {
    /// A dataset of `count` 2×2 grey images whose pixels encode their index, labels cycling over 10 classes.
    static func dataset(_ count: Int) -> Dataset {
        var bytes: [UInt8] = []
        for i in 0 ..< count { bytes += [UInt8(i & 255), UInt8(i >> 8 & 255), 7, 9] }
        return Dataset(bytes: bytes, labels: (0 ..< count).map { Int32($0 % 10) }, channels: 1, height: 2, width: 2,
                       classes: 10, name: "synthetic", channelMean: [0.5], channelStd: [0.5])
    }

    static let logger = Logger(label: "test")

    static func federation(clients: Int, examples: Int) throws -> VirtualFederation {
        struct NoModel: Error {}
        let parts = try VirtualPartitions.make(train: dataset(examples), clients: clients, alpha: 0, seed: 1,
                                               maxTrainExamples: nil, logger: logger)
        return VirtualFederation(partitions: parts, pool: ModelPool(size: 1) { throw NoModel() },
                                 defaults: TrainingDefaults(), logger: logger, out: NSTemporaryDirectory())
    }

    @Test func theSamplingFractionDrawsExactlyTheClientsPerRound() {
        for n in [1, 2, 3, 7, 10, 99, 100, 101, 997, 1000, 10_000, 100_000, 1_000_000] {
            for m in Set([1, 2, 3, n / 3, n / 2, n - 1, n].filter { $0 >= 1 && $0 <= n }) {
                let fedAvg = makeFedAvg(fractionFit: samplingFraction(clientsPerRound: m, clients: n), minFitClients: 1,
                                        acceptFailures: true, seed: 1, minClients: n, initialParameters: nil,
                                        fitConfig: [:], evaluateFn: nil)
                #expect(fedAvg.numFitClients(available: n) == m, "N \(n), M \(m)")
            }
        }
    }

    /// 50 virtual clients, 5 per round, 4,000 rounds through FedAvg's own configureFit: every
    /// round draws 5 distinct clients, and the counts pass a χ² test of uniformity (49 degrees of
    /// freedom; 85.35 is the 0.1% critical value). Seeded, so the statistic is the same every run.
    @Test func samplingOverTheVirtualClientsIsUniform() throws {
        let n = 50, m = 5, rounds = 4000
        let federation = try Self.federation(clients: n, examples: 200)
        let manager = InMemoryClientManager()
        for i in 0 ..< n { #expect(throws: Never.self) { try manager.register(federation.proxy(i)).get() } }
        let fedAvg = makeFedAvg(fractionFit: samplingFraction(clientsPerRound: m, clients: n), minFitClients: nil,
                                acceptFailures: true, seed: 42, minClients: n, initialParameters: nil, fitConfig: [:],
                                evaluateFn: nil)
        var counts = [String: Int]()
        for round in 1 ... rounds {
            let ids = fedAvg.configureFit(round: round, parameters: Parameters(), clientManager: manager).map(\.client.id)
            #expect(ids.count == m && Set(ids).count == m, "round \(round): \(ids)")
            for id in ids { counts[id, default: 0] += 1 }
        }
        #expect(counts.count == n)
        let expected = Double(rounds * m) / Double(n)
        let chiSquare = (0 ..< n).map { i -> Double in
            let d = Double(counts["partition-\(i)", default: 0]) - expected
            return d * d / expected
        }.reduce(0, +)
        #expect(chiSquare < 85.35, "χ² = \(chiSquare), counts \(counts)")
    }

    /// The virtual partitions are the TCP simulation's partitions (same examples, same order),
    /// each cut to --max-train-examples, and only the examples in use are kept.
    @Test func partitionsAreTheTCPSplitKeptCompactly() throws {
        let train = Self.dataset(600)
        let parts = try VirtualPartitions.make(train: train, clients: 10, alpha: 0.5, seed: 3, maxTrainExamples: 5,
                                               logger: Self.logger)
        let reference = try partition(labels: train.labels, numPartitions: 10,
                                      scheme: .dirichlet(alpha: 0.5, minPartitionSize: 10), seed: 3)
        #expect(parts.clients == 10)
        #expect(parts.data.count == 50)
        for i in 0 ..< 10 {
            let want = train.subset(Array(reference[i].prefix(5)))
            let got = parts.dataset(of: i)
            #expect(got.labels == want.labels, "client \(i)")
            #expect(got.allImages() == want.allImages(), "client \(i)")
        }
    }

    /// IID with more clients than examples: one example each, every example used, by 2 or 3 of
    /// the 250 clients over 100 examples.
    @Test func iidReachesBeyondTheExampleCount() throws {
        let parts = try VirtualPartitions.make(train: Self.dataset(100), clients: 250, alpha: 0, seed: 5,
                                               maxTrainExamples: nil, logger: Self.logger)
        #expect(parts.clients == 250)
        var uses = [Int](repeating: 0, count: 100)
        for i in 0 ..< 250 {
            let e = parts.examples(of: i)
            #expect(e.count == 1)
            for j in e { uses[Int(j)] += 1 }
        }
        #expect(uses.allSatisfy { $0 == 2 || $0 == 3 }, "\(uses)")
        // The first pass is a permutation: clients 0..<100 hold distinct examples.
        #expect(Set((0 ..< 100).flatMap { parts.examples(of: $0) }).count == 100)
    }

    /// Dirichlet needs an example per client: the error names the largest client count; below
    /// it, the minimum partition size is scaled down from 10.
    @Test func dirichletBeyondTheExampleCountNamesTheLimit() throws {
        #expect(throws: SimulationError.tooManyClientsForDirichlet(clients: 70_000, samples: 60_000, dataset: "fmnist")) {
            try simulationPartitioner(alpha: 0.5, clients: 70_000, samples: 60_000, dataset: "fmnist")
        }
        let message = SimulationError.tooManyClientsForDirichlet(clients: 70_000, samples: 60_000, dataset: "fmnist").description
        #expect(message.contains("at most 60000 clients"))
        #expect(try simulationPartitioner(alpha: 0.5, clients: 10, samples: 60_000, dataset: "f") == .dirichlet(alpha: 0.5, minPartitionSize: 10))
        #expect(try simulationPartitioner(alpha: 0.5, clients: 20_000, samples: 60_000, dataset: "f") == .dirichlet(alpha: 0.5, minPartitionSize: 3))
        #expect(try simulationPartitioner(alpha: 0, clients: 100_000, samples: 60_000, dataset: "f") == .iid)
    }

    /// A minimum the Dirichlet draws cannot meet at this many clients (10,000 examples over 1,337
    /// clients: min(10, 10000/1337) = 7) is lowered to the largest one `dirichletPartitionLimit`
    /// allows (1 here), so the split is made; at twice the limit it fails naming the limit.
    @Test func dirichletLowersAnUnreachableMinimumAndNamesTheLimitBeyond() throws {
        let train = Self.dataset(10_000)
        #expect(try simulationPartitioner(alpha: 0.5, clients: 1337, samples: 10_000, dataset: "s") == .dirichlet(alpha: 0.5, minPartitionSize: 7))
        #expect(dirichletPartitionLimit(labels: train.labels, alpha: 0.5, minPartitionSize: 1) == 1337)
        #expect(throws: LoaderError.self) {
            try CIFARLoader.partition(labels: train.labels, numPartitions: 1337, scheme: .dirichlet(alpha: 0.5, minPartitionSize: 7), seed: 42)
        }
        let parts = try VirtualPartitions.make(train: train, clients: 1337, alpha: 0.5, seed: 42, maxTrainExamples: nil, logger: Self.logger)
        #expect(parts.clients == 1337)
        let sizes = (0 ..< 1337).map { parts.examples(of: $0).count }
        #expect(sizes.min() == 1)
        #expect(sizes.reduce(0, +) == 10_000)
        #expect(Set((0 ..< 1337).flatMap { parts.examples(of: $0) }).count == 10_000, "every example once")
        do {
            _ = try VirtualPartitions.make(train: train, clients: 2674, alpha: 0.5, seed: 42, maxTrainExamples: nil, logger: Self.logger)
            Issue.record("2674 Dirichlet clients of 10,000 examples were split")
        } catch {
            #expect("\(error)".contains("about 1337 partitions at most"), "\(error)")
        }
        // Beyond the example count it is refused before any draw, naming the same limit.
        #expect(throws: SimulationError.tooManyClientsForDirichlet(clients: 1_000_000, samples: 10_000, dataset: "synthetic", alpha: 0.5, largest: 1337)) {
            try VirtualPartitions.make(train: train, clients: 1_000_000, alpha: 0.5, seed: 42, maxTrainExamples: nil, logger: Self.logger)
        }
        let message = SimulationError.tooManyClientsForDirichlet(clients: 1_000_000, samples: 10_000, dataset: "synthetic", alpha: 0.5, largest: 1337).description
        #expect(message.contains("makes about 1337 at most") && message.contains("lower --clients to 1337"), "\(message)")
    }

    /// Lognormal sizes: IID only (refused beside α > 0), every example once, the partitioner's
    /// sizes, and more clients than examples refused with the limit named.
    @Test func lognormalSizesAreIIDOnlyAndCoverTheData() throws {
        #expect(throws: SimulationError.sizesNeedIID(sizes: .lognormal(sigma: 1), alpha: 0.5)) {
            try simulationPartitioner(alpha: 0.5, sizes: .lognormal(sigma: 1), clients: 10, samples: 60_000, dataset: "f")
        }
        #expect(SimulationError.sizesNeedIID(sizes: .lognormal(sigma: 1), alpha: 0.5).description.contains("--alpha 0"))
        #expect(try simulationPartitioner(alpha: 0, sizes: .lognormal(sigma: 1), clients: 10, samples: 60_000, dataset: "f") == .lognormal(sigma: 1))
        let train = Self.dataset(1000)
        let parts = try VirtualPartitions.make(train: train, clients: 50, alpha: 0, sizes: .lognormal(sigma: 1), seed: 9,
                                               maxTrainExamples: nil, logger: Self.logger)
        let expected = try CIFARLoader.partition(labels: train.labels, numPartitions: 50, scheme: .lognormal(sigma: 1), seed: 9)
        #expect((0 ..< 50).map { parts.examples(of: $0).map(Int.init) } == expected)
        #expect(Set((0 ..< 50).flatMap { parts.examples(of: $0) }).count == 1000)
        #expect(throws: LoaderError.self) {
            try VirtualPartitions.make(train: Self.dataset(100), clients: 250, alpha: 0, sizes: .lognormal(sigma: 1), seed: 5,
                                       maxTrainExamples: nil, logger: Self.logger)
        }
    }

    /// The bar's text for fixed figures: a quarter done at 3 s leaves 9 s.
    @Test func progressBarLineShowsDoneSampledAndETA() {
        #expect(progressBarLine(round: 2, of: 5, done: 1, sampled: 4, elapsed: 3, width: 8)
            == "\rround 2/5 [##......] 1/4 clients, 3.0 s, ETA 9.0 s\u{1B}[K")
        #expect(progressBarLine(round: 1, of: 1, done: 0, sampled: 3, elapsed: 0, width: 4)
            == "\rround 1/1 [....] 0/3 clients, 0.0 s, ETA -\u{1B}[K")
        #expect(progressBarLine(round: 3, of: 3, done: 3, sampled: 3, elapsed: 1.5, width: 4).hasPrefix("\rround 3/3 [####] 3/3 clients, 1.5 s, ETA 0.0 s"))
    }

    /// On a terminal each finished client redraws the bar (carriage return, no newline) and the
    /// last one ends the line; a round cut short by lost clients is closed at the fit phase's end.
    @Test func aBarRedrawsPerClientAndClosesItsLine() throws {
        struct NoModel: Error {}
        let written = Mutex<[String]>([])
        let parts = try VirtualPartitions.make(train: Self.dataset(40), clients: 4, alpha: 0, seed: 1,
                                               maxTrainExamples: nil, logger: Self.logger)
        let federation = VirtualFederation(partitions: parts, pool: ModelPool(size: 1) { throw NoModel() },
                                           defaults: TrainingDefaults(), logger: Self.logger, out: NSTemporaryDirectory(),
                                           display: .bar { text in written.withLock { $0.append(text) } })
        federation.roundStarted(1, of: 2, sampled: 3)
        for _ in 0 ..< 3 { federation.fitFinished(round: 1) }
        federation.fitPhaseEnded(round: 1)
        let first = written.withLock { $0 }
        #expect(first.count == 4, "\(first)")
        for (k, text) in first.enumerated() {
            #expect(text.hasPrefix("\rround 1/2 ["), "\(text)")
            #expect(text.contains("] \(k)/3 clients"), "\(text)")
        }
        #expect(first[0].contains("[" + String(repeating: ".", count: 30) + "]"))
        #expect(first[3].contains("[" + String(repeating: "#", count: 30) + "]"))
        #expect(first[..<3].allSatisfy { !$0.contains("\n") } && first[3].hasSuffix("\n"))
        // Round 2 loses a client: the fit phase's end closes the bar once.
        federation.roundStarted(2, of: 2, sampled: 2)
        federation.fitFinished(round: 2)
        federation.fitPhaseEnded(round: 2)
        federation.fitPhaseEnded(round: 2)
        let second = Array(written.withLock { $0 }.dropFirst(4))
        #expect(second.count == 3 && second[1].contains("1/2 clients") && second[2] == "\n", "\(second)")
    }

    /// An idle virtual client is its proxy object: identity and partition as a TCP client states them.
    @Test func proxiesCarryTheTCPIdentity() throws {
        let federation = try Self.federation(clients: 3, examples: 30)
        let p = federation.proxy(2)
        #expect(p.id == "partition-2")
        #expect(p.partition == 2)
    }
}
