import FedAvg
import FlowerCore
import Foundation
import Logging
import TestSupport
import XCTest

/// The virtual clock's cost model, sync rounds on it, and the asynchronous FedBuff driver.
final class FedBuffTests: XCTestCase {
    private func manager(_ clients: [FakeClient]) -> InMemoryClientManager {
        let m = InMemoryClientManager()
        for c in clients { _ = m.register(c) }
        return m
    }

    /// A system model whose clients hold the given example counts, no speed spread, no link.
    private func clock(_ examples: [String: Int], secondsPerExample: Double = 1, epochs: Int = 1,
                       speed: LogNormal? = nil, link: LogNormal? = nil, availability: Double = 1) -> SystemModel {
        SystemModel(seed: 7, speed: speed, linkMbps: link, availability: availability,
                    secondsPerExample: secondsPerExample, epochs: epochs,
                    examples: { examples[$0.id] ?? 0 })
    }

    /// A client whose fit adds `delta` to the model it was sent and reports `who` as a metric.
    private func adder(_ id: String, _ delta: [Float], n: Int, who: Double = 0, wallDelay: Duration = .zero) -> FakeClient {
        FakeClient(id, onFit: { ins, _ in
            if wallDelay > .zero { try await Task.sleep(for: wallDelay) }  // the modelled slow client: its update lands late
            var p = ins.parameters
            for i in p.values.indices { p.values[i] += delta[i] }
            return FitRes(round: ins.round, parameters: p, numExamples: n, metrics: ["who": .double(who)])
        })
    }

    private func fedAvg(_ initial: [Float], minFit: Int) throws -> FedAvg {
        FedAvg(fractionEvaluate: 0, minFitClients: minFit, minAvailableClients: minFit,
               initialParameters: try model(initial),
               evaluateFn: { _, p in (Double(p.values.reduce(0, +)), ["accuracy": .double(Double(p.values[0]))]) })
    }

    func testLogNormalParsesBothFormsAndRefusesTheRest() {
        XCTAssertEqual(LogNormal(argument: "lognormal:1"), LogNormal(mu: 0, sigma: 1))
        XCTAssertEqual(LogNormal(argument: "lognormal:2.5,0.5"), LogNormal(mu: 2.5, sigma: 0.5))
        for bad in ["lognormal:", "lognormal:-1", "normal:1", "lognormal:1,2,3", "lognormal:x", "lognormal:inf"] {
            XCTAssertNil(LogNormal(argument: bad), bad)
        }
    }

    /// exp(σZ) per client: log-factors over many identities have mean ≈ 0 and deviation ≈ σ, and a
    /// client's factor is the same whenever it is asked (and differs with the seed).
    func testSpeedFactorsAreLognormalAndFixedPerClient() {
        let m = clock([:], speed: LogNormal(sigma: 1))
        let logs = (0 ..< 4000).map { log(m.speedFactor("partition-\($0)")) }
        let mean = logs.reduce(0, +) / Double(logs.count)
        let sd = (logs.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(logs.count - 1)).squareRoot()
        XCTAssertEqual(mean, 0, accuracy: 0.06)  // 4 standard errors of 1/√4000
        XCTAssertEqual(sd, 1, accuracy: 0.05)
        XCTAssertEqual(m.speedFactor("partition-3"), m.speedFactor("partition-3"))
        var other = m
        other.seed = 8
        XCTAssertNotEqual(other.speedFactor("partition-3"), m.speedFactor("partition-3"))
        XCTAssertEqual(clock([:]).speedFactor("partition-3"), 1)
    }

    /// Availability P: the fraction of (client, slot) pairs online is P.
    func testAvailabilityIsTheFractionOfClientsOnline() {
        let m = clock([:], availability: 0.7)
        var online = 0
        for c in 0 ..< 200 { for slot in 1 ... 20 where m.isOnline("partition-\(c)", slot: slot) { online += 1 } }
        XCTAssertEqual(Double(online) / 4000, 0.7, accuracy: 0.03)  // ±4 standard errors
        XCTAssertTrue(clock([:]).isOnline("x", slot: 1))
    }

    /// Sync rounds on the virtual clock: compute = examples × epochs × seconds per example, plus the
    /// model down and the update up at the link's rate (σ = 0: exactly e^μ Mbit/s); a round lasts
    /// until its slowest sampled client arrives.
    func testSyncRoundLastsUntilTheSlowestSampledClientArrives() async throws {
        let clients = [adder("a", [1, 0, 0], n: 1), adder("b", [0, 1, 0], n: 2), adder("c", [0, 0, 1], n: 3)]
        var options = ServerOptions()
        // 3 values × 4 bytes × 8 bits = 96 bits at 1 Mbit/s = 96 µs each way.
        options.systemModel = clock(["a": 1, "b": 2, "c": 3], secondsPerExample: 0.5, epochs: 2,
                                    link: LogNormal(mu: 0, sigma: 0))
        let server = Server(clientManager: manager(clients), strategy: try fedAvg([0, 0, 0], minFit: 3), options: options)
        let summary = try await server.fit(numRounds: 2, timeout: .seconds(30))
        let slowest = 3 * 2 * 0.5 + 2 * 96e-6
        XCTAssertEqual(summary.history.rounds.compactMap(\.virtualSeconds), [slowest, slowest])
        XCTAssertEqual(summary.history.rounds.compactMap(\.virtualTime), [slowest, 2 * slowest])
        let line = try XCTUnwrap(summary.history.rounds.last?.jsonLine)
        XCTAssertTrue(line.contains("\"virtual_seconds\":"), line)
        XCTAssertTrue(line.contains("\"virtual_time\":"), line)
        // Without a system model the records carry no virtual time.
        let plain = try await Server(clientManager: manager([adder("d", [1, 1, 1], n: 1)]),
                                     strategy: try fedAvg([0, 0, 0], minFit: 1)).fit(numRounds: 1, timeout: .seconds(30))
        XCTAssertNil(plain.history.rounds[0].virtualTime)
        XCTAssertFalse(plain.history.rounds[0].jsonLine.contains("virtual"))
    }

    /// Offline clients are not sampled: each round trains exactly the clients online in it.
    func testSyncRoundSamplesOnlyOnlineClients() async throws {
        let ids = (0 ..< 12).map { "c\($0)" }
        let clients = ids.map { adder($0, [1, 0, 0], n: 1) }
        var options = ServerOptions()
        let model = clock(Dictionary(uniqueKeysWithValues: ids.map { ($0, 1) }), availability: 0.5)
        options.systemModel = model
        let strategy = FedAvg(fractionFit: 1, fractionEvaluate: 0, minFitClients: 1, minAvailableClients: 12,
                              initialParameters: try model3())
        _ = try await Server(clientManager: manager(clients), strategy: strategy, options: options)
            .fit(numRounds: 3, timeout: .seconds(30))
        var trainedSomewhere = 0
        for round in 1 ... 3 {
            let trained = Set(clients.filter { $0.recorded.fits.contains { $0.round == round } }.map(\.id))
            let online = Set(ids.filter { model.isOnline($0, slot: round) })
            XCTAssertEqual(trained, online, "round \(round)")
            XCTAssertLessThan(online.count, 12, "with P = 0.5 some of 12 clients must be offline in round \(round)")
            trainedSomewhere += trained.count
        }
        XCTAssertGreaterThan(trainedSomewhere, 0)
    }

    private func model3() throws -> Parameters { try model([0, 0, 0]) }

    /// (1 + τ)^−a and the buffer's Σ nᵢ(1+τᵢ)^−a(wᵢ − w_sentᵢ) / Σ nᵢ, by hand.
    func testStalenessWeightingMatchesHandComputedValues() throws {
        XCTAssertEqual(FedBuffConfig.stalenessWeight(0, exponent: 0.5), 1)
        XCTAssertEqual(FedBuffConfig.stalenessWeight(3, exponent: 0.5), 0.5, accuracy: 1e-15)
        XCTAssertEqual(FedBuffConfig.stalenessWeight(1, exponent: 1), 0.5, accuracy: 1e-15)
        XCTAssertEqual(FedBuffConfig.stalenessWeight(7, exponent: 1.0 / 3), 0.5, accuracy: 1e-15)
        XCTAssertEqual(FedBuffConfig.stalenessWeight(9, exponent: 0), 1)

        var buffer = FedBuffBuffer(size: 3, stalenessExponent: 0.5)
        // Fresh result: Δ = [2, 4, 6], n = 1, weight 1.
        buffer.add(try model([2, 4, 6]), sent: try model([0, 0, 0]), numExamples: 1, staleness: 0)
        // Three versions stale: Δ = [3, 0, 0], n = 3, weight 3 · 4^−½ = 1.5.
        buffer.add(try model([4, 1, 1]), sent: try model([1, 1, 1]), numExamples: 3, staleness: 3)
        XCTAssertEqual(buffer.count, 2)
        XCTAssertEqual(buffer.stalenessSum, 3)
        // Σ = [2 + 4.5, 4, 6] = [6.5, 4, 6]; / Σn = 4 → [1.625, 1, 1.5]; η = 2 onto [10, 10, 10].
        let next = buffer.apply(to: try model([10, 10, 10]), learningRate: 2)
        XCTAssertEqual(next.values, [13.25, 12, 13])
        XCTAssertEqual(next.layout.map(\.name), ["w", "b"])
    }

    /// K = C = N, a = 0, η = 1: every update waits for all clients, each on the current version,
    /// so FedBuff is synchronous FedAvg — same models, same losses and accuracies, round by round —
    /// whatever order the (lognormal-speed) clients arrive in.
    func testFedBuffWithBufferEqualToAllClientsReproducesSyncFedAvg() async throws {
        func clients() -> [FakeClient] {
            // Results depend on the model they start from (halve it, then add), so any use of a
            // wrong version would show.
            let specs: [(String, [Float], Int)] = [("a", [1, 2, 3], 1), ("b", [4, 5, 6], 2), ("c", [7, 8, 9], 3), ("d", [-2, 1, 0.5], 5)]
            return specs.map { id, d, n in
                FakeClient(id, onFit: { ins, _ in
                    var p = ins.parameters
                    for i in p.values.indices { p.values[i] = 0.5 * p.values[i] + d[i] * Float(ins.round) }
                    return FitRes(round: ins.round, parameters: p, numExamples: n)
                })
            }
        }
        let examples = ["a": 1, "b": 2, "c": 3, "d": 5]
        let sync = try await Server(clientManager: manager(clients()), strategy: try fedAvg([1, -1, 2], minFit: 4))
            .fit(numRounds: 4, timeout: .seconds(30))

        let asyncClients = clients()
        let server = Server(clientManager: manager(asyncClients), strategy: try fedAvg([1, -1, 2], minFit: 4))
        let driver = FedBuffServer(server: server,
                                   config: FedBuffConfig(concurrency: 4, bufferSize: 4, stalenessExponent: 0,
                                                         serverLearningRate: 1),
                                   model: clock(examples, speed: LogNormal(sigma: 1)))
        let fedBuff = try await driver.fit(numUpdates: 4, timeout: .seconds(30))

        XCTAssertEqual(fedBuff.roundsCompleted, 4)
        XCTAssertEqual(fedBuff.history.rounds.map(\.round), [1, 2, 3, 4])
        XCTAssertEqual(fedBuff.history.rounds.map(\.fitClients), [4, 4, 4, 4])
        XCTAssertEqual(fedBuff.history.rounds.map(\.staleness), [0, 0, 0, 0])
        for (s, f) in zip(sync.history.rounds, fedBuff.history.rounds) {
            XCTAssertEqual(try XCTUnwrap(f.loss), try XCTUnwrap(s.loss), accuracy: 1e-4 * max(1, abs(s.loss!)), "round \(s.round)")
            XCTAssertEqual(try XCTUnwrap(f.accuracy), try XCTUnwrap(s.accuracy), accuracy: 1e-4 * max(1, abs(s.accuracy!)), "round \(s.round)")
        }
        for (x, y) in zip(fedBuff.parameters.values, sync.parameters.values) { XCTAssertEqual(x, y, accuracy: 1e-4) }
        for c in asyncClients { XCTAssertEqual(c.recorded.fits.map(\.round), [1, 2, 3, 4], c.id) }
        // Each update lasts until its slowest client arrives, as a sync round would.
        let model = clock(examples, speed: LogNormal(sigma: 1))
        let slowest = asyncClients.map { model.fitSeconds($0, parameterCount: 3) }.max()!
        let times = fedBuff.history.rounds.compactMap(\.virtualTime)
        XCTAssertEqual(times.count, 4)
        for (k, t) in times.enumerated() { XCTAssertEqual(t, Double(k + 1) * slowest, accuracy: 1e-9) }
    }

    /// Virtual clock arrival order: results are applied in the order they would arrive, not in the
    /// order the (wall-clock) tasks finish. a takes 1 virtual second but is slow in wall time, b
    /// takes 3; K = 1, C = 2, a = 0: updates come from a (t=1), a (t=2), b (t=3, trained on version
    /// 0, so 2 stale), a (t=3, trained on version 2, 1 stale).
    func testResultsAreAppliedInVirtualArrivalOrder() async throws {
        let a = adder("a", [1, 0, 0], n: 1, who: 1, wallDelay: .milliseconds(30))
        let b = adder("b", [0, 1, 0], n: 3, who: 2)
        let server = Server(clientManager: manager([a, b]), strategy: try fedAvg([0, 0, 0], minFit: 2))
        let driver = FedBuffServer(server: server,
                                   config: FedBuffConfig(concurrency: 2, bufferSize: 1, stalenessExponent: 0),
                                   model: clock(["a": 1, "b": 3]))
        let summary = try await driver.fit(numUpdates: 4, timeout: .seconds(30))
        let r = summary.history.rounds
        XCTAssertEqual(r.map { $0.fitMetrics["who"]?.doubleValue }, [1, 1, 2, 1])
        XCTAssertEqual(r.compactMap(\.virtualTime), [1, 2, 3, 3])
        XCTAssertEqual(r.compactMap(\.virtualSeconds), [1, 1, 1, 0])
        XCTAssertEqual(r.map(\.staleness), [0, 0, 2, 1])
        XCTAssertEqual(summary.parameters.values, [3, 1, 0])
    }

    /// --max-staleness: a and b take 1 virtual second, c takes 5 (K = 1, C = 3, S = 2). Two updates
    /// a second; c's first result arrives at t = 5 trained on version 0 when the server is at
    /// version 8: discarded. Without S it is applied, discounted by (1 + 8)^−½ = 1/3.
    func testResultsStalerThanMaxStalenessAreDiscarded() async throws {
        func run(maxStaleness: Int?) async throws -> FitSummary {
            let clients = [adder("a", [1, 0, 0], n: 1), adder("b", [0, 1, 0], n: 1), adder("c", [0, 0, 900], n: 1)]
            let server = Server(clientManager: manager(clients), strategy: try fedAvg([0, 0, 0], minFit: 3))
            let driver = FedBuffServer(server: server,
                                       config: FedBuffConfig(concurrency: 3, bufferSize: 1, stalenessExponent: 0.5,
                                                             maxStaleness: maxStaleness),
                                       model: clock(["a": 1, "b": 1, "c": 5]))
            return try await driver.fit(numUpdates: 10, timeout: .seconds(30))
        }
        let strict = try await run(maxStaleness: 2)
        XCTAssertEqual(strict.history.rounds.compactMap(\.discarded).reduce(0, +), 1)
        XCTAssertEqual(strict.history.rounds.compactMap(\.virtualTime), [1, 1, 2, 2, 3, 3, 4, 4, 5, 5])
        XCTAssertEqual(strict.history.rounds.map(\.fitClients), Array(repeating: 1, count: 10))
        // 10 updates from a and b alone, each fresh or 1 stale, discount 1 or 2^−½.
        XCTAssertEqual(strict.parameters.values[2], 0)
        XCTAssertGreaterThan(strict.parameters.values[0], 0)

        let lenient = try await run(maxStaleness: nil)
        XCTAssertEqual(lenient.history.rounds.compactMap(\.discarded).reduce(0, +), 0)
        XCTAssertEqual(lenient.parameters.values[2], 300, accuracy: 1e-3)
        XCTAssertTrue(lenient.history.rounds.contains { $0.staleness == 8 })
    }

    /// Checkpoint after every update; a resumed run restarts from the checkpointed version and
    /// virtual time (the buffer and clients in flight were dropped) and continues to the total.
    func testResumeContinuesFromTheCheckpointedVersionAndClock() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fedbuff-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/ckpt"
        func driver(_ clients: [FakeClient]) throws -> FedBuffServer {
            var options = ServerOptions(checkpointPath: path)
            options.historyPath = dir + "/history.jsonl"
            let server = Server(clientManager: manager(clients), strategy: try fedAvg([0, 0, 0], minFit: 2), options: options)
            return FedBuffServer(server: server, config: FedBuffConfig(concurrency: 2, bufferSize: 2, stalenessExponent: 0),
                                 model: clock(["a": 1, "b": 2]))
        }
        let first = try await driver([adder("a", [1, 0, 0], n: 1), adder("b", [0, 1, 0], n: 1)]).fit(numUpdates: 2, timeout: .seconds(30))
        let checkpoint = try Checkpoint.read(from: path)
        XCTAssertEqual(checkpoint.round, 2)
        XCTAssertEqual(checkpoint.parameters.values, first.parameters.values)
        XCTAssertEqual(checkpoint.history.rounds.last?.virtualTime, 4)

        let clients = [adder("a", [1, 0, 0], n: 1), adder("b", [0, 1, 0], n: 1)]
        let resumed = try await driver(clients).fit(numUpdates: 3, timeout: .seconds(30), resumingFrom: checkpoint)
        XCTAssertEqual(resumed.roundsCompleted, 3)
        XCTAssertEqual(resumed.history.rounds.map(\.round), [1, 2, 3])
        XCTAssertEqual(resumed.history.rounds.compactMap(\.virtualTime), [2, 4, 6])
        for c in clients { XCTAssertEqual(c.recorded.fits.first?.round, 3, "restarted on version 2, as round 3") }
        XCTAssertEqual(resumed.parameters.values, [1.5, 1.5, 0])
        let lines = try String(contentsOfFile: dir + "/history.jsonl", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 3)
    }

    func testSettingsThatCannotWorkAreRefusedWithTheFlagToChange() {
        XCTAssertNil(FedBuffConfig(concurrency: 10, bufferSize: 5).problem)
        XCTAssertTrue(FedBuffConfig(concurrency: 4, bufferSize: 5).problem?.contains("--buffer-size") ?? false)
        XCTAssertTrue(FedBuffConfig(concurrency: 0, bufferSize: 0).problem?.contains("--concurrency") ?? false)
        XCTAssertTrue(FedBuffConfig(concurrency: 4, bufferSize: 2, maxStaleness: -1).problem?.contains("--max-staleness") ?? false)
        XCTAssertTrue(FedBuffConfig(concurrency: 4, bufferSize: 2, serverLearningRate: 0).problem?.contains("--server-learning-rate") ?? false)
    }

    /// Four clients of different speeds (1, 2, 3 and 5 virtual seconds), 3 training at a time, an
    /// update every 2 results: results arrive stale, so clients are in flight on older versions at
    /// every checkpoint. Each client adds its own direction and reports its own `who`, so the model
    /// and the fit metrics tell which clients each update used.
    private func staleRun(_ path: String?, updates: Int, resumingFrom checkpoint: Checkpoint? = nil,
                          logger: Logger = quietLogger) async throws -> (FitSummary, [String: [Int]]) {
        let clients = [adder("a", [1, 0, 0], n: 1, who: 1), adder("b", [0, 1, 0], n: 2, who: 10),
                       adder("c", [0, 0, 1], n: 3, who: 100), adder("d", [0.5, -1, 2], n: 4, who: 1000)]
        var options = ServerOptions(checkpointPath: path)
        options.historyPath = path.map { $0 + ".history.jsonl" }
        let server = Server(clientManager: manager(clients), strategy: try fedAvg([0, 0, 0], minFit: 3), options: options,
                            logger: logger)
        let driver = FedBuffServer(server: server, config: FedBuffConfig(concurrency: 3, bufferSize: 2, stalenessExponent: 0.5),
                                   model: clock(["a": 1, "b": 2, "c": 3, "d": 5]), logger: logger)
        let summary = try await driver.fit(numUpdates: updates, timeout: .seconds(30), resumingFrom: checkpoint)
        return (summary, Dictionary(uniqueKeysWithValues: clients.map { ($0.id, $0.recorded.fits.map(\.round)) }))
    }

    private func assertSameUpdates(_ x: [RoundRecord], _ y: [RoundRecord], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(x.count, y.count, file: file, line: line)
        for (a, b) in zip(x, y) {
            XCTAssertEqual(a.round, b.round, file: file, line: line)
            XCTAssertEqual(a.virtualTime, b.virtualTime, "update \(a.round)", file: file, line: line)
            XCTAssertEqual(a.virtualSeconds, b.virtualSeconds, "update \(a.round)", file: file, line: line)
            XCTAssertEqual(a.staleness, b.staleness, "update \(a.round)", file: file, line: line)
            XCTAssertEqual(a.fitClients, b.fitClients, "update \(a.round)", file: file, line: line)
            XCTAssertEqual(a.discarded, b.discarded, "update \(a.round)", file: file, line: line)
            XCTAssertEqual(a.loss, b.loss, "update \(a.round)", file: file, line: line)
            XCTAssertEqual(a.accuracy, b.accuracy, "update \(a.round)", file: file, line: line)
            XCTAssertEqual(a.fitMetrics, b.fitMetrics, "update \(a.round)", file: file, line: line)
        }
    }

    /// Interrupted after update 4 of 8 and resumed: the checkpoint holds the clients in flight on
    /// older versions and the sampler's count, so the resumed run sends them their versions again
    /// and then draws the same clients as the uninterrupted run — same updates, same virtual times,
    /// same staleness, same model.
    func testResumedRunMakesTheUninterruptedRunsChoices() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fedbuff-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (whole, wholeFits) = try await staleRun(nil, updates: 8)
        XCTAssertTrue(whole.history.rounds.contains { ($0.staleness ?? 0) > 0 }, "the run has stale results")

        let path = dir + "/ckpt"
        _ = try await staleRun(path, updates: 4)
        let checkpoint = try Checkpoint.read(from: path)
        XCTAssertEqual(checkpoint.round, 4)
        let state = try XCTUnwrap(checkpoint.fedBuff)
        XCTAssertEqual(state.inFlight.count, 2, "3 in flight less the one whose result made update 4")
        XCTAssertTrue(state.inFlight.contains { $0.version < 4 }, "a client trains on an older version")
        XCTAssertEqual(Set(state.versions.keys), Set(state.inFlight.map(\.version).filter { $0 < 4 }))
        XCTAssertTrue(state.inFlight.allSatisfy { ($0.arrival ?? 0) > checkpoint.history.rounds[3].virtualTime! })

        let log = LogCapture()
        let (resumed, resumedFits) = try await staleRun(path, updates: 8, resumingFrom: checkpoint, logger: log.logger)
        XCTAssertTrue(log.contains("2 clients that were in flight are sent their versions again"), log.text)
        XCTAssertEqual(resumed.roundsCompleted, 8)
        assertSameUpdates(resumed.history.rounds, whole.history.rounds)
        XCTAssertEqual(resumed.parameters.values, whole.parameters.values)
        // Each client's fits after the resume are the tail of its fits in the uninterrupted run:
        // the clients in flight first (on their saved versions), then the sampler's later choices.
        for (id, fits) in resumedFits {
            XCTAssertEqual(fits, Array(wholeFits[id]!.suffix(fits.count)), id)
        }
        for d in state.inFlight { XCTAssertEqual(resumedFits[d.client]?.first, d.version + 1, d.client) }
        let resumedStarts = resumedFits.values.map(\.count).reduce(0, +)
        XCTAssertEqual(resumedStarts, wholeFits.values.map(\.count).reduce(0, +) - (state.dispatches - state.inFlight.count))
    }

    /// A checkpoint without FedBuff state (written before it was kept) resumes as before: the
    /// clients in flight are dropped, C clients start on the checkpointed version, the log says so,
    /// and the run after the checkpoint departs from the uninterrupted one.
    func testACheckpointWithoutFedBuffStateDropsTheClientsInFlight() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fedbuff-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/ckpt"
        _ = try await staleRun(path, updates: 4)
        var old = try Checkpoint.read(from: path)
        old.fedBuff = nil
        let log = LogCapture()
        let (resumed, fits) = try await staleRun(path, updates: 8, resumingFrom: old, logger: log.logger)
        XCTAssertTrue(log.contains("from a checkpoint without FedBuff state"), log.text)
        XCTAssertEqual(resumed.history.rounds.map(\.round), Array(1 ... 8))
        // This is what resuming did before the state was kept: the updates after the checkpoint
        // are not the uninterrupted run's (the comparison the test above makes would fail).
        let (whole, _) = try await staleRun(nil, updates: 8)
        XCTAssertEqual(resumed.history.rounds.prefix(4).map(\.virtualTime), whole.history.rounds.prefix(4).map(\.virtualTime))
        XCTAssertNotEqual(resumed.history.rounds.suffix(4).map(\.virtualTime), whole.history.rounds.suffix(4).map(\.virtualTime))
        XCTAssertNotEqual(resumed.parameters.values, whole.parameters.values)
        XCTAssertGreaterThanOrEqual(fits.values.filter { $0.first == 5 }.count, 3, "3 clients restarted on version 4, as round 5")
        XCTAssertTrue(fits.values.allSatisfy { ($0.first ?? 5) >= 5 }, "no client was sent an older version: \(fits)")
        XCTAssertEqual(resumed.history.rounds[4].staleness, 0, "update 5 used only results trained on version 4")
    }

    /// The real clock (`flwr server --mode async`) follows the same rule. d never answers in the
    /// first run, so it is in flight on version 0 at the checkpoint of update 3 (with no arrival:
    /// the real clock has none). Resumed with all four connected, every client that was in flight
    /// is sent its saved version again (d: version 0, as round 1); resumed without d, d is dropped
    /// with a log line and its slot goes to the sampler.
    func testRealClockResumeSendsTheClientsInFlightTheirVersionsAgain() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fedbuff-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/ckpt"
        func run(_ clients: [FakeClient], updates: Int, from checkpoint: Checkpoint?, logger: Logger = quietLogger) async throws -> FitSummary {
            var options = ServerOptions(checkpointPath: path, finishTimeout: .milliseconds(50))
            options.historyPath = dir + "/history.jsonl"
            let server = Server(clientManager: manager(clients), strategy: try fedAvg([0, 0, 0], minFit: 3), options: options)
            return try await FedBuffServer(server: server, config: FedBuffConfig(concurrency: 3, bufferSize: 2, stalenessExponent: 0),
                                           model: nil, logger: logger)
                .fit(numUpdates: updates, timeout: .seconds(30), resumingFrom: checkpoint)
        }
        let silent = FakeClient("d", onFit: { _, _ in
            try await Task.sleep(for: .seconds(3600))
            throw CancellationError()
        })
        _ = try await run([adder("a", [1, 0, 0], n: 1), adder("b", [0, 1, 0], n: 1), adder("c", [0, 0, 1], n: 1), silent],
                          updates: 3, from: nil)
        let checkpoint = try Checkpoint.read(from: path)
        let state = try XCTUnwrap(checkpoint.fedBuff)
        XCTAssertEqual(checkpoint.round, 3)
        XCTAssertEqual(state.inFlight.count, 2)
        XCTAssertTrue(state.inFlight.allSatisfy { $0.arrival == nil }, "no virtual arrival on the real clock")
        let d = try XCTUnwrap(state.inFlight.first { $0.client == "d" })
        XCTAssertEqual(d.version, 0)
        XCTAssertEqual(state.versions.keys.sorted(), Array(Set(state.inFlight.map(\.version)).filter { $0 < 3 }).sorted())

        let again = [adder("a", [1, 0, 0], n: 1), adder("b", [0, 1, 0], n: 1), adder("c", [0, 0, 1], n: 1), adder("d", [0, 0, 0], n: 1)]
        let resumed = try await run(again, updates: 5, from: checkpoint)
        XCTAssertEqual(resumed.roundsCompleted, 5)
        for saved in state.inFlight {
            let fits = try XCTUnwrap(again.first { $0.id == saved.client }).recorded.fits
            XCTAssertEqual(fits.first?.round, saved.version + 1, saved.client)
            XCTAssertEqual(fits.first?.parameters.values, saved.version == 3 ? Optional(checkpoint.parameters.values) : state.versions[saved.version],
                           "\(saved.client) is sent the model of version \(saved.version)")
        }

        let log = LogCapture()
        let withoutD = [adder("a", [1, 0, 0], n: 1), adder("b", [0, 1, 0], n: 1), adder("c", [0, 0, 1], n: 1)]
        let partial = try await run(withoutD, updates: 5, from: checkpoint, logger: log.logger)
        XCTAssertEqual(partial.roundsCompleted, 5)
        XCTAssertTrue(log.contains("1 clients that were in flight are not connected (d); their slots go to the sampler"), log.text)
    }
}
