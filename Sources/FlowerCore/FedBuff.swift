// Asynchronous federated learning with buffered aggregation: FedBuff, Nguyen et al., "Federated
// Learning with Buffered Asynchronous Aggregation", AISTATS 2022 (arXiv:2106.06639). The server
// keeps C clients training at all times, each on the model version it was sent; every K results
// it applies the buffered updates, each discounted by its staleness, and starts the next clients
// on the new version. On the virtual clock (`SystemModel`, `flwr simulate`) arrivals are computed,
// so the order in which results arrive is known when a client starts and the run is reproducible;
// without one (`flwr server --mode async`) results are taken as they arrive on the real clock.
import FlowerBase
import Foundation
import Logging

/// FedBuff's settings (`flwr simulate --mode async`).
public struct FedBuffConfig: Sendable, Equatable {
    /// C: clients training at all times.
    public var concurrency: Int
    /// K: results buffered before a server update.
    public var bufferSize: Int
    /// a: an update τ versions stale is weighted by (1 + τ)^−a (the paper's 1/√(1+τ) is a = 0.5).
    public var stalenessExponent: Double
    /// S: results more than S versions stale are discarded (nil: none are).
    public var maxStaleness: Int?
    /// η: the server step applied to the buffered average.
    public var serverLearningRate: Double
    /// E: central evaluation after every E-th update (and the last).
    public var evalEvery: Int

    public init(concurrency: Int, bufferSize: Int, stalenessExponent: Double = 0.5, maxStaleness: Int? = nil,
                serverLearningRate: Double = 1, evalEvery: Int = 1) {
        self.concurrency = concurrency
        self.bufferSize = bufferSize
        self.stalenessExponent = stalenessExponent
        self.maxStaleness = maxStaleness
        self.serverLearningRate = serverLearningRate
        self.evalEvery = evalEvery
    }

    /// Why these settings cannot run, or nil.
    public var problem: String? {
        if concurrency < 1 { return "--concurrency must be at least 1, got \(concurrency)" }
        if bufferSize < 1 { return "--buffer-size must be at least 1, got \(bufferSize)" }
        if bufferSize > concurrency {
            return "--buffer-size \(bufferSize) exceeds --concurrency \(concurrency): a client contributes at most once per server update, so the buffer could never fill; lower --buffer-size or raise --concurrency"
        }
        if !(stalenessExponent >= 0 && stalenessExponent.isFinite) { return "--staleness-exponent must be 0 or positive, got \(stalenessExponent)" }
        if let s = maxStaleness, s < 0 { return "--max-staleness must be 0 or positive, got \(s)" }
        if !(serverLearningRate > 0 && serverLearningRate.isFinite) { return "--server-learning-rate must be positive, got \(serverLearningRate)" }
        if evalEvery < 1 { return "--eval-every must be at least 1, got \(evalEvery)" }
        return nil
    }

    /// (1 + τ)^−a: the discount of an update `staleness` versions old.
    public static func stalenessWeight(_ staleness: Int, exponent: Double) -> Double {
        pow(1 + Double(staleness), -exponent)
    }
}

/// FedBuff's buffer: Σ nᵢ·(1 + τᵢ)^−a·(wᵢ − w_sentᵢ) over the buffered results, and Σ nᵢ. The
/// server update is w ← w + η · Σ nᵢ(1 + τᵢ)^−a(wᵢ − w_sentᵢ) / Σ nᵢ: the paper's staleness-
/// discounted average with FedAvg's example weights (nᵢ = `numExamples`), so with every τ = 0 and
/// η = 1 it is exactly FedAvg's weighted average of the models.
public struct FedBuffBuffer: Sendable {
    /// The running weighted sum of updates (Double, so K float32 updates add without loss).
    private(set) var sum: [Double]
    /// Σ nᵢ.
    public private(set) var examples: Double = 0
    /// Results buffered.
    public private(set) var count = 0
    /// Σ τᵢ (for the mean staleness of the update).
    public private(set) var stalenessSum = 0
    let exponent: Double

    /// An empty buffer for models of `size` values, discounting with exponent `a`.
    public init(size: Int, stalenessExponent a: Double) {
        sum = [Double](repeating: 0, count: size)
        exponent = a
    }

    /// Adds `update` (trained from `sent`, `staleness` versions old, on `numExamples` examples).
    /// Both must have the buffer's size.
    public mutating func add(_ update: Parameters, sent: Parameters, numExamples: Int, staleness: Int) {
        precondition(update.count == sum.count && sent.count == sum.count, "update size differs from the buffer's")
        let n = Double(numExamples)
        let w = n * FedBuffConfig.stalenessWeight(staleness, exponent: exponent)
        let u = update.values, s = sent.values
        for i in sum.indices { sum[i] += w * (Double(u[i]) - Double(s[i])) }
        examples += n
        count += 1
        stalenessSum += staleness
    }

    /// The new model: `current` + η · sum / Σ nᵢ (`current` unchanged when the buffer holds no examples).
    public func apply(to current: Parameters, learningRate eta: Double) -> Parameters {
        guard examples > 0 else { return current }
        var next = current
        let scale = eta / examples
        for i in next.values.indices { next.values[i] = Float(Double(current.values[i]) + scale * sum[i]) }
        return next
    }
}

/// The asynchronous driver (FedBuff) beside `Server`'s synchronous round loop: it reuses the
/// server's client screening, initial model, evaluation round (central and federated), history,
/// checkpoint and observers; only the schedule differs. `--rounds` counts server updates.
///
/// - Clients: a client is started when a slot is free, chosen uniformly (seeded) among the clients
///   online for the current version that are neither training nor waiting in the buffer (a client
///   contributes at most once per update), and trained on the current version.
/// - A client that fails (error, refused answer) is not heard from: its slot is freed at its
///   computed arrival and another client starts.
/// - Checkpoint after every update (version, model, history with the virtual clock), with the
///   clients in flight (who, on which version, when their result is due on the virtual clock,
///   their start number), the models of the older versions they train on, and the number of
///   clients started so far. The buffer is empty after an update, so nothing of it is lost.
///   `--resume` sends each client that was in flight its version again, due at its saved arrival,
///   and the sampler continues its stream after the saved count: on the virtual clock the resumed
///   run makes the uninterrupted run's choices and has its history. A client in flight that is not
///   connected when the resumed run starts (real clock) is dropped and its slot filled by the
///   sampler. A checkpoint without this state (written before it was kept) drops the clients in
///   flight and starts C clients on the checkpointed version with the sampler's stream restarted.
public final class FedBuffServer: Sendable {
    public let server: Server
    public let config: FedBuffConfig
    /// The virtual clock's cost model; nil: the real clock (results in the order they arrive).
    public let model: SystemModel?
    private let logger: Logger

    public init(server: Server, config: FedBuffConfig, model: SystemModel?, logger: Logger = Logger(label: "flwr.fedbuff")) {
        self.server = server
        self.config = config
        self.model = model
        self.logger = logger
    }

    /// Runs until `numUpdates` server updates (resuming after `checkpoint.round`), tells clients
    /// `finish` at the end, also on failure.
    public func fit(numUpdates: Int, timeout: Duration,
                    resumingFrom checkpoint: Checkpoint? = nil) async throws(ServerError) -> FitSummary {
        let box = ProgressBox(checkpoint?.round ?? 0)
        let result: Result<FitSummary, ServerError>
        do throws(ServerError) {
            result = .success(try await run(numUpdates: numUpdates, timeout: timeout, checkpoint: checkpoint, progress: box))
        } catch {
            logger.error("\(error)")
            result = .failure(error)
        }
        let reason: String, failed: Bool
        switch result {
        case .success: reason = "training finished after \(box.completed) asynchronous updates"; failed = false
        case .failure(let e): reason = "server stopped: \(e)"; failed = true
        }
        await server.finishAll(roundsCompleted: box.completed, reason: reason, failed: failed)
        return try result.get()
    }

    private final class ProgressBox: @unchecked Sendable {
        var completed: Int
        init(_ c: Int) { completed = c }
    }

    /// A client training on a version, with the virtual time its result arrives.
    private struct InFlight {
        let client: any ClientProxy
        let version: Int
        let arrival: Double
        let sequence: Int
        let task: Task<Result<FitRes, ClientFailure>, Never>
    }

    private func run(numUpdates: Int, timeout: Duration, checkpoint: Checkpoint?,
                     progress: ProgressBox) async throws(ServerError) -> FitSummary {
        guard numUpdates >= 1 else { throw .invalidArgument("--rounds must be at least 1, got \(numUpdates)") }
        if let problem = config.problem { throw .invalidArgument(problem) }
        guard server.options.secureAggregation == nil else {
            throw .invalidArgument("secure aggregation needs a synchronous round of clients masking together; --mode async aggregates clients one by one: drop --secagg or use --mode sync")
        }
        let strategy = server.strategy, options = server.options, manager = server.clientManager
        var (history, current, _) = try server.restore(from: checkpoint)
        var version = checkpoint?.round ?? 0
        let saved = checkpoint?.fedBuff
        if checkpoint != nil {
            if let saved {
                logger.info("resuming after update \(version) of \(numUpdates): \(saved.inFlight.count) clients that were in flight are sent their versions again; the sampler continues after \(saved.dispatches) starts")
            } else {
                logger.notice("resuming after update \(version) of \(numUpdates) from a checkpoint without FedBuff state (written by an older build): the clients in flight were not saved and are dropped, \(config.concurrency) clients start on version \(version) and the sampler starts its stream again")
            }
        }
        guard version < numUpdates else {
            return FitSummary(history: history, parameters: current, roundsCompleted: version)
        }
        try await server.waitForClients(afterRound: version)
        if checkpoint == nil { current = try await server.initialParameters(timeout: timeout) }

        var now = model == nil ? 0 : history.rounds.last?.virtualTime ?? 0
        let wallStart = ContinuousClock.now
        let (completions, completed) = AsyncStream<Int>.makeStream()
        var arrivals = completions.makeAsyncIterator()
        var lastUpdateTime = now
        var versions: [Int: Parameters] = [version: current]
        for (v, values) in saved?.versions ?? [:] where v < version {
            guard values.count == current.count else {
                throw .invalidArgument("the checkpoint's version \(v) holds \(values.count) values, its model \(current.count); delete the checkpoint to start over")
            }
            var older = current
            older.values = values
            versions[v] = older
        }
        var configs: [Int: Config] = [:]
        var inFlight: [InFlight] = []
        var buffered = Set<String>()
        var buffer = FedBuffBuffer(size: current.count, stalenessExponent: config.stalenessExponent)
        var failures = 0, discarded = 0, starts = saved?.dispatches ?? 0
        var fitMetrics: Metrics = [:]
        var updateStarted = ContinuousClock.now
        var ledger = TrafficLedger()
        var stopReason: String?
        defer { for f in inFlight { f.task.cancel() } }

        /// Starts `client` training on version `trained`, its result due at `due` (nil: computed
        /// from now on the virtual clock), as the `sequence`-th client of the run.
        func start(_ client: any ClientProxy, on trained: Int, due: Double?, sequence: Int) {
            let params = versions[trained] ?? current
            let round = trained + 1
            let config: Config
            if let c = configs[round] { config = c } else {
                config = strategy.configureFit(round: round, parameters: params, clientManager: manager).first?.ins.config ?? [:]
                if trained == version { configs = [round: config] }
            }
            let ins = FitIns(round: round, parameters: params, config: config)
            let arrival = model.map { due ?? now + $0.fitSeconds(client, parameterCount: params.count) } ?? .infinity
            let task = Task<Result<FitRes, ClientFailure>, Never> {
                defer { completed.yield(sequence) }
                do { return .success(try await client.fit(ins, timeout: timeout)) } catch {
                    return .failure(ClientFailure(clientID: client.id, kind: .error, reason: "fit failed: \(error)"))
                }
            }
            ledger.note([client])
            inFlight.append(InFlight(client: client, version: trained, arrival: arrival, sequence: sequence, task: task))
        }

        func fill() {
            while inFlight.count < config.concurrency {
                let busy = Set(inFlight.map(\.client.id)).union(buffered)
                let candidates = manager.all().filter { !busy.contains($0.id) && (model?.isOnline($0.id, slot: version) ?? true) }
                guard !candidates.isEmpty else { return }
                var rng = SplitMix64(seed: SplitMix64.derive(seed: strategy.seed ^ 0xFEDB_0FF0, stream: UInt64(starts)))
                let client = candidates[Int.random(in: 0 ..< candidates.count, using: &rng)]
                start(client, on: version, due: nil, sequence: starts)
                starts += 1
            }
        }

        /// The checkpoint's state after `version`: the clients in flight then and the sampler's position.
        func checkpointState() -> FedBuffCheckpoint {
            let trainedOn = Set(inFlight.map(\.version))
            return FedBuffCheckpoint(
                dispatches: starts,
                inFlight: inFlight.sorted { $0.sequence < $1.sequence }.map {
                    FedBuffCheckpoint.Dispatch(client: $0.client.id, version: $0.version,
                                               arrival: model == nil ? nil : $0.arrival, sequence: $0.sequence)
                },
                versions: versions.filter { $0.key < version && trainedOn.contains($0.key) }.mapValues(\.values))
        }

        // Resumed: the clients that were in flight train again on the versions they were sent.
        if let saved {
            let connected = Dictionary(manager.all().map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
            var absent: [String] = [], over: [String] = []
            for d in saved.inFlight {
                guard let client = connected[d.client] else { absent.append(d.client); continue }
                guard inFlight.count < config.concurrency else { over.append(d.client); continue }
                start(client, on: d.version, due: d.arrival, sequence: d.sequence)
            }
            func names(_ ids: [String]) -> String { ids.prefix(5).joined(separator: ", ") + (ids.count > 5 ? ", …" : "") }
            if !absent.isEmpty {
                logger.notice("resuming: \(absent.count) clients that were in flight are not connected (\(names(absent))); their slots go to the sampler")
            }
            if !over.isEmpty {
                logger.notice("resuming: \(over.count) clients that were in flight exceed --concurrency \(config.concurrency) (\(names(over))) and are dropped")
            }
        }

        logger.info("FedBuff: \(config.concurrency) clients training at a time, an update every \(config.bufferSize) results, staleness exponent \(config.stalenessExponent), max staleness \(config.maxStaleness.map(String.init) ?? "none"), server learning rate \(config.serverLearningRate)")
        if let reason = strategy.stopReason(beforeRound: version + 1) {
            logger.notice("stopping before update \(version + 1): \(reason)")
            return FitSummary(history: history, parameters: current, roundsCompleted: version, stopReason: reason)
        }
        options.observer?.roundStarted(round: version + 1, of: numUpdates, sampled: config.concurrency)
        while version < numUpdates {
            if Task.isCancelled { throw .cancelled(afterRound: version) }
            fill()
            if inFlight.isEmpty && model == nil {
                // Real clock: every client left; wait for them to come back (or stop with the reason).
                try await server.waitForClients(afterRound: version)
                fill()
            }
            guard !inFlight.isEmpty else {
                let why = model.map { "availability \($0.availability)" } ?? "the others are in the buffer"
                throw .roundFailed(round: version + 1, attempts: 1,
                                   reason: "no client can train version \(version) (\(manager.count) connected, \(buffered.count) in the buffer; \(why)); lower --buffer-size or start more clients")
            }
            let nextIndex: Int
            if model != nil {
                // Virtual clock: the earliest computed arrival (ties: the earlier start).
                nextIndex = inFlight.indices.min(by: {
                    (inFlight[$0].arrival, inFlight[$0].sequence) < (inFlight[$1].arrival, inFlight[$1].sequence)
                })!
            } else {
                // Real clock: whichever result arrives first.
                var found: Int?
                while found == nil {
                    guard let sequence = await arrivals.next() else { throw .cancelled(afterRound: version) }
                    found = inFlight.firstIndex { $0.sequence == sequence }
                }
                nextIndex = found!
            }
            let next = inFlight.remove(at: nextIndex)
            now = model == nil ? wallStart.duration(to: .now).seconds : next.arrival
            let sent = versions[next.version] ?? current
            switch await next.task.value {
            case .failure(let f):
                failures += 1
                logger.warning("update \(version + 1): fit failure: \(f)")
            case .success(let raw):
                do throws(ClientFailure) {
                    let (res, _) = try server.screenFit(raw, from: next.client, global: sent, previousOutlier: nil)
                    if let why = res.parameters.layoutMismatch(against: sent) {
                        throw ClientFailure(clientID: next.client.id, kind: .rejected, reason: "update refused: \(why)")
                    }
                    if let i = res.parameters.firstNonFinite() {
                        throw ClientFailure(clientID: next.client.id, kind: .rejected, reason: "update refused: non-finite value at index \(i)")
                    }
                    let staleness = version - next.version
                    if let s = config.maxStaleness, staleness > s {
                        discarded += 1
                        logger.debug("update \(version + 1): discarded the result of \(next.client.id) trained on version \(next.version) (\(staleness) > --max-staleness \(s))")
                    } else {
                        buffer.add(res.parameters, sent: sent, numExamples: res.numExamples, staleness: staleness)
                        buffered.insert(next.client.id)
                        for (k, v) in res.metrics { if let d = v.doubleValue, d.isFinite { fitMetrics[k] = .double((fitMetrics[k]?.doubleValue ?? 0) + d * Double(res.numExamples)) } }
                    }
                } catch {
                    failures += 1
                    logger.warning("update \(version + 1): fit failure: \(error)")
                }
            }
            let live = Set(inFlight.map(\.version)).union([version])
            versions = versions.filter { live.contains($0.key) }
            guard buffer.count == config.bufferSize else { continue }

            // Cancelled (SIGTERM) meanwhile: results cut short may have come back as failures;
            // the update is not applied, the checkpoint of the previous one stands.
            if Task.isCancelled { throw .cancelled(afterRound: version) }
            // The server update.
            let results = buffer.count
            current = buffer.apply(to: current, learningRate: config.serverLearningRate)
            let meanStaleness = Double(buffer.stalenessSum) / Double(results)
            let metrics = fitMetrics.mapValues { Scalar.double(($0.doubleValue ?? 0) / buffer.examples) }
            version += 1
            versions[version] = current
            buffer = FedBuffBuffer(size: current.count, stalenessExponent: config.stalenessExponent)
            buffered.removeAll()
            fitMetrics = [:]
            options.observer?.fitFinished(round: version, results: results, failures: [])
            var evaluation: Server.EvaluateRound?
            if version % config.evalEvery == 0 || version == numUpdates {
                evaluation = try await server.evaluateRound(version, parameters: current, timeout: timeout, ledger: &ledger)
            }
            let traffic = ledger.totals()
            var record = RoundRecord(
                round: version,
                loss: evaluation.flatMap { $0.central?.loss ?? $0.federated.loss },
                accuracy: evaluation.flatMap {
                    $0.central?.metrics["accuracy"]?.doubleValue ?? $0.federated.metrics["accuracy"]?.doubleValue
                },
                fitClients: results, failures: failures + (evaluation?.failures.count ?? 0),
                seconds: updateStarted.duration(to: .now).seconds,
                bytesIn: traffic.bytesIn, bytesOut: traffic.bytesOut, fitMetrics: metrics,
                centralMetrics: evaluation?.central?.metrics ?? [:],
                federatedLoss: evaluation?.federated.loss, federatedMetrics: evaluation?.federated.metrics ?? [:])
            if model != nil {
                record.virtualSeconds = now - lastUpdateTime
                record.virtualTime = now
            }
            record.staleness = meanStaleness
            record.discarded = discarded
            history.rounds.append(record)
            progress.completed = version
            try server.persist(record, history: history, parameters: current, state: StrategyState(), of: numUpdates,
                               unit: "update", fedBuff: checkpointState())
            failures = 0; discarded = 0
            lastUpdateTime = now
            updateStarted = .now
            // Bytes of the next update: everything moved from now on, by clients already in flight too.
            ledger = TrafficLedger()
            ledger.note(inFlight.map(\.client))
            if version < numUpdates {
                if let reason = strategy.stopReason(beforeRound: version + 1) {
                    logger.notice("stopping before update \(version + 1): \(reason)")
                    stopReason = reason
                    break
                }
                options.observer?.roundStarted(round: version + 1, of: numUpdates, sampled: config.concurrency)
            }
        }
        // Clients still training on the last versions: virtual ones are cancelled and drained
        // (they share the model pool). Remote ones get up to the finish timeout to answer (the
        // answer is not applied) so that they are then told to finish like the others; cancelling
        // a remote call closes its connection, which the client would take for a lost server and
        // retry. Those still training after the timeout are cut off.
        if model == nil && !inFlight.isEmpty {
            let tasks = inFlight.map(\.task)
            let grace = options.finishTimeout
            await withTaskGroup(of: Void.self) { group in
                group.addTask { for t in tasks { _ = await t.value } }
                group.addTask { try? await Task.sleep(for: grace) }
                await group.next()
                for t in tasks { t.cancel() }
                group.cancelAll()
            }
        }
        for f in inFlight { f.task.cancel() }
        if model != nil { for f in inFlight { _ = await f.task.value } }
        inFlight.removeAll()
        completed.finish()
        return FitSummary(history: history, parameters: current, roundsCompleted: version, stopReason: stopReason)
    }
}
