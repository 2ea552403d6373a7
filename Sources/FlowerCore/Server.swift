import FlowerBase
import Foundation
import Logging

/// How the server waits, retries and where it writes (the round deadline is `fit`'s `timeout`).
public struct ServerOptions: Sendable {
    /// Told about every round as it runs (metrics, TensorBoard); nil: nobody watches.
    public var observer: (any ServerObserver)? = nil
    /// How long to wait for `minAvailableClients` before each round attempt.
    public var waitTimeout: Duration
    /// Attempts per round when the strategy refuses to aggregate (1: stop at the first refusal).
    public var roundAttempts: Int
    /// Pause between a refused attempt and the next.
    public var retryDelay: Duration
    /// Where to write `history.jsonl` (nil: not written).
    public var historyPath: String?
    /// Where to write the checkpoint after every round (nil: not written).
    public var checkpointPath: String?
    /// How long to give all clients together to receive `finish`.
    public var finishTimeout: Duration
    /// Largest `numExamples` a fit or evaluate answer may claim (`--max-examples`); larger is a
    /// rejected answer. Bounded so no sum of weights can overflow.
    public var maxExamples: Int
    /// Server-side clipping (`--clip-norm`): each update wᵢ is scaled so ‖wᵢ − w‖₂ ≤ clipNorm
    /// before the strategy sees it; nil: no clipping.
    public var clipNorm: Double?
    /// Secure aggregation (SecAgg+, `--secagg`): every fit round runs `SecAggRoundDriver` and the
    /// strategy gets only the unmasked average; nil: plain fit rounds.
    public var secureAggregation: SecAggConfig? = nil
    /// The virtual clock's cost model (`flwr simulate --client-speed/--link-mbps/--client-availability`):
    /// each round samples among the clients online in it, and its record carries its virtual
    /// duration — the arrival of its slowest sampled client; nil: no virtual clock.
    public var systemModel: SystemModel? = nil

    /// Options; the defaults wait 10 minutes for clients and never retry a refused round.
    public init(waitTimeout: Duration = .seconds(600), roundAttempts: Int = 1, retryDelay: Duration = .seconds(1),
                historyPath: String? = nil, checkpointPath: String? = nil, finishTimeout: Duration = .seconds(10),
                maxExamples: Int = AnswerChecks.defaultMaxExamples, clipNorm: Double? = nil) {
        self.waitTimeout = waitTimeout
        self.roundAttempts = roundAttempts
        self.retryDelay = retryDelay
        self.historyPath = historyPath
        self.checkpointPath = checkpointPath
        self.finishTimeout = finishTimeout
        self.maxExamples = maxExamples
        self.clipNorm = clipNorm
    }
}

/// Why a training run stopped early; each case says what to do.
public enum ServerError: Error, Sendable, CustomStringConvertible {
    /// A setting is out of range (rounds, timeout, attempts).
    case invalidArgument(String)
    /// Fewer than `minAvailableClients` connected before the wait timeout.
    case notEnoughClients(connected: Int, needed: Int, waited: Duration)
    /// Neither the strategy nor any client provided a starting model.
    case noInitialParameters(String)
    /// The strategy refused the round on every allowed attempt.
    case roundFailed(round: Int, attempts: Int, reason: String)
    /// The strategy's central evaluation threw.
    case centralEvaluationFailed(round: Int, detail: String)
    /// The checkpoint could not be written.
    case checkpoint(CheckpointError)
    /// `history.jsonl` could not be written.
    case history(FileError)
    /// The task running `fit` was cancelled (e.g. on SIGTERM); the last checkpoint stands.
    case cancelled(afterRound: Int)

    public var description: String {
        switch self {
        case .invalidArgument(let s):
            return s
        case .notEnoughClients(let c, let n, let w):
            return "only \(c) of the \(n) required clients connected within \(w); start more clients, lower --min-clients or raise the wait timeout"
        case .noInitialParameters(let s):
            return "no initial model: \(s); give the strategy initial parameters or check that clients answer GetParameters"
        case .roundFailed(let r, let a, let reason):
            return "round \(r) failed after \(a) attempt(s): \(reason); use --accept-failures, lower --min-fit-clients, raise --round-timeout or check the failing clients"
        case .centralEvaluationFailed(let r, let d):
            return "central evaluation of round \(r) failed: \(d); check the server's test data"
        case .checkpoint(let e):
            return "\(e)"
        case .history(let e):
            return "history not written: \(e)"
        case .cancelled(let r):
            return "stopped after round \(r) (cancelled); resume from the last checkpoint with --resume"
        }
    }
}

/// The result of a training run.
public struct FitSummary: Sendable {
    /// Per-round records, including rounds restored from a checkpoint.
    public var history: History
    /// The final global model.
    public var parameters: Parameters
    /// The last completed round.
    public var roundsCompleted: Int
    /// Why training stopped before the last round (`Strategy.stopReason`), or nil.
    public var stopReason: String? = nil
}

/// The fit-metric key an attack simulation sets (to the attack's name) on a malicious client's
/// answers, so `history.jsonl` can record which sampled clients were malicious.
public let attackMetricKey = "attack"

/// The fit-metric key a record-level DP-SGD site sets to the ε it has spent so far (at its δ,
/// `dp_sgd_delta`): the server records it per site (`RoundRecord.siteEpsilon`).
public let siteEpsilonMetricKey = "dp_sgd_epsilon"

/// The federated server loop (Flower's `Server.fit`): wait for clients, then per round sample,
/// fit in parallel under a deadline, aggregate as results arrive, evaluate, record, checkpoint.
public final class Server: Sendable {
    /// Where clients are registered by the transport.
    public let clientManager: any SamplingClientManager
    /// The algorithm deciding sampling, aggregation and evaluation.
    public let strategy: any Strategy
    /// Waiting, retry and output settings.
    public let options: ServerOptions
    private let logger: Logger

    /// A server over `clientManager` running `strategy`.
    public init(clientManager: any SamplingClientManager, strategy: any Strategy,
                options: ServerOptions = ServerOptions(), logger: Logger = Logger(label: "flwr.server")) {
        self.clientManager = clientManager
        self.strategy = strategy
        self.options = options
        self.logger = logger
    }

    /// Runs rounds until `numRounds` (resuming after `checkpoint.round` when given), each phase
    /// bounded by `timeout`; tells every connected client `finish` at the end, also on failure.
    public func fit(numRounds: Int, timeout: Duration,
                    resumingFrom checkpoint: Checkpoint? = nil) async throws(ServerError) -> FitSummary {
        var completed = checkpoint?.round ?? 0
        let result: Result<FitSummary, ServerError>
        do throws(ServerError) {
            result = .success(try await run(numRounds: numRounds, timeout: timeout, checkpoint: checkpoint,
                                             completed: &completed))
        } catch {
            logger.error("\(error)")
            result = .failure(error)
        }
        let reason: String
        switch result {
        case .success: reason = "training finished after \(completed) rounds"
        case .failure(let e): reason = "server stopped: \(e)"
        }
        let failed: Bool
        if case .failure = result { failed = true } else { failed = false }
        await finishAll(roundsCompleted: completed, reason: reason, failed: failed)
        return try result.get()
    }

    private func run(numRounds: Int, timeout: Duration, checkpoint: Checkpoint?,
                     completed: inout Int) async throws(ServerError) -> FitSummary {
        guard numRounds >= 1 else { throw .invalidArgument("--rounds must be at least 1, got \(numRounds)") }
        guard timeout > .zero else { throw .invalidArgument("the round timeout must be positive, got \(timeout)") }
        guard options.roundAttempts >= 1 else {
            throw .invalidArgument("round attempts must be at least 1, got \(options.roundAttempts)")
        }
        guard options.maxExamples >= 1 else {
            throw .invalidArgument("--max-examples must be at least 1, got \(options.maxExamples)")
        }
        if let c = options.clipNorm, !(c > 0 && c.isFinite) {
            throw .invalidArgument("--clip-norm must be a positive number, got \(c)")
        }
        if options.secureAggregation != nil, options.clipNorm != nil {
            throw .invalidArgument("--clip-norm clips each client's own update on the server, which secure aggregation hides from it; drop --clip-norm or --secagg (clients can clip: --secagg-clipping-range bounds every value of an update)")
        }
        var (history, parameters, state) = try restore(from: checkpoint)
        var outlier: OutlierNote?
        if let checkpoint { logger.info("resuming after round \(checkpoint.round) of \(numRounds)") }
        guard completed < numRounds else {
            return FitSummary(history: history, parameters: parameters, roundsCompleted: completed)
        }
        try await waitForClients(afterRound: completed)
        if checkpoint == nil { parameters = try await initialParameters(timeout: timeout) }

        var stopReason: String?
        for round in completed + 1 ... numRounds {
            if Task.isCancelled { throw .cancelled(afterRound: completed) }
            if let reason = strategy.stopReason(beforeRound: round) {
                logger.notice("stopping before round \(round): \(reason)")
                stopReason = reason
                break
            }
            let outcome = try await runRound(round, of: numRounds, parameters: parameters, state: state,
                                             previousOutlier: outlier, timeout: timeout)
            // Cancelled (SIGTERM) while the round ran: the fits it cut short came back as
            // failures, so its aggregate is not the round's. Nothing of it is recorded; the
            // checkpoint of the previous round stands and a resumed run reruns this one whole.
            if Task.isCancelled { throw .cancelled(afterRound: completed) }
            parameters = outcome.aggregate.parameters
            state = outcome.aggregate.state
            outlier = outcome.outlier
            var record = outcome.record
            if let v = record.virtualSeconds {
                record.virtualTime = (history.rounds.last?.virtualTime ?? 0) + v
            }
            history.rounds.append(record)
            completed = round
            try persist(record, history: history, parameters: parameters, state: state, of: numRounds)
        }
        return FitSummary(history: history, parameters: parameters, roundsCompleted: completed, stopReason: stopReason)
    }

    /// Where a run starts: the checkpoint's history, model and strategy state (warning when its
    /// strategy or seed differ from this run's), or nothing; `history.jsonl` is reset to that history.
    /// Shared by the round loop and the asynchronous driver.
    func restore(from checkpoint: Checkpoint?) throws(ServerError) -> (History, Parameters, StrategyState) {
        var history = History(), parameters = Parameters(), state = StrategyState()
        if let checkpoint {
            if checkpoint.strategy != strategy.name {
                logger.warning("checkpoint was written by strategy \(checkpoint.strategy), resuming with \(strategy.name)")
            }
            if checkpoint.seed != strategy.seed {
                logger.warning("checkpoint seed \(checkpoint.seed) differs from --seed \(strategy.seed): client sampling will differ from the interrupted run")
            }
            history = checkpoint.history
            parameters = checkpoint.parameters
            state = checkpoint.state
        }
        if let path = options.historyPath {
            do throws(FileError) { try HistoryLog(path: path).reset(to: history) } catch { throw .history(error) }
        }
        return (history, parameters, state)
    }

    /// Records a finished round (`unit` "round") or asynchronous update (`unit` "update"), already
    /// appended to `history`: the checkpoint, `history.jsonl`, the log line and the observer.
    func persist(_ record: RoundRecord, history: History, parameters: Parameters, state: StrategyState,
                 of total: Int, unit: String = "round", fedBuff: @autoclosure () -> FedBuffCheckpoint? = nil) throws(ServerError) {
        if let path = options.checkpointPath {
            let cp = Checkpoint(round: record.round, parameters: parameters, history: history,
                                seed: strategy.seed, strategy: strategy.name, state: state, fedBuff: fedBuff())
            do throws(CheckpointError) { try cp.write(to: path) } catch { throw .checkpoint(error) }
        }
        if let path = options.historyPath {
            do throws(FileError) { try HistoryLog(path: path).append(record) } catch { throw .history(error) }
        }
        logger.info("\(Self.logLine(record, of: total, unit: unit))")
        options.observer?.roundCompleted(record, of: total)
    }

    func waitForClients(afterRound completed: Int) async throws(ServerError) {
        let need = strategy.minAvailableClients
        if clientManager.count < need {
            logger.info("waiting for \(need) clients (\(clientManager.count) connected)")
        }
        guard await clientManager.waitFor(count: need, timeout: options.waitTimeout) else {
            if Task.isCancelled { throw .cancelled(afterRound: completed) }
            throw .notEnoughClients(connected: clientManager.count, needed: need, waited: options.waitTimeout)
        }
    }

    func initialParameters(timeout: Duration) async throws(ServerError) -> Parameters {
        do {
            if let p = try await strategy.initializeParameters() { return p }
        } catch {
            throw .noInitialParameters("the strategy failed: \(error)")
        }
        let candidates = clientManager.all()
        for client in candidates {
            var got: ParametersRes?
            let failures = await FanOut.run([(client: client, ins: GetParametersIns())], timeout: timeout,
                                            call: { try await $0.getParameters($1, timeout: $2) },
                                            onAnswer: { _, res in got = res })
            if let got, got.status.code == .ok {
                logger.info("initial parameters from client \(client.id) (\(got.parameters.count) values)")
                return got.parameters
            }
            logger.warning("client \(client.id) gave no initial parameters: \(failures.first?.reason ?? got?.status.message ?? "")")
        }
        throw .noInitialParameters("none of \(candidates.count) connected clients answered")
    }

    /// What one round produced.
    private struct RoundOutcome {
        var aggregate: FitAggregate
        var record: RoundRecord
        /// An outlier update the round accepted (`OutlierNote.find` over the accepted updates).
        var outlier: OutlierNote?
    }

    /// Checks one fit answer before the strategy sees it (status, `numExamples` bound, finite
    /// metrics), clips it under `--clip-norm`, and returns it with its distance from `global`.
    func screenFit(_ res: FitRes, from client: any ClientProxy, global: Parameters,
                           previousOutlier: OutlierNote?) throws(ClientFailure) -> (res: FitRes, norm: Double?) {
        try checkFitAnswer(res, from: client)
        var res = res
        let norm = updateNorm(res.parameters, from: global)
        if let norm, let c = options.clipNorm {
            res.parameters = clipUpdate(res.parameters, around: global, norm: norm, maxNorm: c)
        }
        if norm == nil, res.parameters.hasSameLayout(as: global), let note = previousOutlier {
            throw outlierDivergence(client, after: note)
        }
        return (res, norm)
    }

    /// The status, `numExamples` and metrics checks of a fit answer (`screenFit`'s first part).
    private func checkFitAnswer(_ res: FitRes, from client: any ClientProxy) throws(ClientFailure) {
        guard res.status.code == .ok else {
            throw ClientFailure(clientID: client.id, kind: .status,
                                reason: "fit status \(res.status.code): \(res.status.message)")
        }
        do throws(AnswerRejection) {
            try AnswerChecks.checkExamples(res.numExamples, max: options.maxExamples)
            try AnswerChecks.checkMetrics(res.metrics)
        } catch {
            throw ClientFailure(clientID: client.id, kind: .rejected, reason: "update refused: \(error)")
        }
    }

    /// Non-finite values in an update of the right layout, right after an outlier was accepted:
    /// the honest client's divergence is most likely the outlier's doing.
    private func outlierDivergence(_ client: any ClientProxy, after note: OutlierNote) -> ClientFailure {
        ClientFailure(clientID: client.id, kind: .rejected,
                      reason: "update has non-finite values right after round \(note.round), in which client \(note.clientID) sent an outlier update (\(note.size)) that the strategy accepted; the poisoned global model, not this client's --lr, is the likely cause: use a robust --strategy (fedmedian, fedtrimmedavg, krum, multikrum, bulyan) or --clip-norm")
    }

    /// `screenFit` and `aggregator.add` in one call, for an aggregator that measures the norm in
    /// its own pass over the update (`fusesUpdateNorm`) and no `--clip-norm`: the same checks,
    /// refusals, messages and norm, with each update read once on the round loop instead of
    /// twice. Returns the update's distance from `global`.
    func screenAndAddFit(_ res: FitRes, from client: any ClientProxy, global: Parameters,
                         previousOutlier: OutlierNote?,
                         into aggregator: inout any FitAggregator) throws(ClientFailure) -> Double? {
        try checkFitAnswer(res, from: client)
        if let note = previousOutlier, res.parameters.hasSameLayout(as: global),
           res.parameters.firstNonFinite() != nil {
            throw outlierDivergence(client, after: note)
        }
        return try aggregator.addMeasuringNorm(res, from: client, global: global)
    }

    /// Checks one evaluate answer: status, `numExamples` bound, finite loss and metrics.
    private func screenEvaluate(_ res: EvaluateRes, from client: any ClientProxy) throws(ClientFailure) {
        guard res.status.code == .ok else {
            throw ClientFailure(clientID: client.id, kind: .status,
                                reason: "evaluate status \(res.status.code): \(res.status.message)")
        }
        do throws(AnswerRejection) {
            try AnswerChecks.checkExamples(res.numExamples, max: options.maxExamples)
            try AnswerChecks.checkLoss(res.loss)
            try AnswerChecks.checkMetrics(res.metrics)
        } catch {
            throw ClientFailure(clientID: client.id, kind: .rejected, reason: "evaluation refused: \(error)")
        }
    }

    /// One round, retried per `options.roundAttempts` when the strategy refuses to aggregate: the
    /// fit round (sample, train, screen, aggregate), then the evaluate round (central and on the
    /// clients), then the record. Flower's `Server.fit_round` and `evaluate_round`; an
    /// asynchronous driver can call the two pieces on its own schedule.
    private func runRound(_ round: Int, of numRounds: Int, parameters: Parameters, state: StrategyState,
                          previousOutlier: OutlierNote?, timeout: Duration) async throws(ServerError) -> RoundOutcome {
        var lastReason = ""
        for attempt in 1 ... options.roundAttempts {
            if attempt > 1 {
                logger.warning("round \(round): retrying (attempt \(attempt) of \(options.roundAttempts)) after: \(lastReason)")
                do { try await Task.sleep(for: options.retryDelay) } catch { throw .cancelled(afterRound: round - 1) }
            }
            // Every round (as Flower's sampling does) waits for minAvailableClients again: a
            // client lost in the previous round must come back, or the run stops with a reason.
            try await waitForClients(afterRound: round - 1)
            let started = ContinuousClock.now
            var ledger = TrafficLedger()
            let fit: FitRound
            switch await fitRound(round, of: numRounds, parameters: parameters, state: state,
                                  previousOutlier: previousOutlier, timeout: timeout, ledger: &ledger) {
            case .refused(let reason):
                lastReason = reason
                continue
            case .aggregated(let result):
                fit = result
            }
            let evaluation = try await evaluateRound(round, parameters: fit.aggregate.parameters, timeout: timeout,
                                                     ledger: &ledger)
            let traffic = ledger.totals()
            let record = RoundRecord(
                round: round,
                loss: evaluation.central?.loss ?? evaluation.federated.loss,
                accuracy: evaluation.central?.metrics["accuracy"]?.doubleValue
                    ?? evaluation.federated.metrics["accuracy"]?.doubleValue,
                fitClients: fit.results, failures: fit.failures.count + evaluation.failures.count,
                seconds: started.duration(to: .now).seconds,
                bytesIn: traffic.bytesIn, bytesOut: traffic.bytesOut,
                fitMetrics: fit.aggregate.metrics, centralMetrics: evaluation.central?.metrics ?? [:],
                federatedLoss: evaluation.federated.loss, federatedMetrics: evaluation.federated.metrics,
                malicious: fit.malicious.isEmpty ? nil : fit.malicious.sorted(), privacy: fit.aggregate.privacy,
                siteEpsilon: fit.siteEpsilon.isEmpty ? nil : fit.siteEpsilon, secureAggregation: fit.secureAggregation)
            var timed = record
            timed.virtualSeconds = fit.virtualSeconds
            return RoundOutcome(aggregate: fit.aggregate, record: timed, outlier: fit.outlier)
        }
        throw .roundFailed(round: round, attempts: options.roundAttempts, reason: lastReason)
    }

    /// What a fit round produced when the strategy aggregated it.
    struct FitRound {
        var aggregate: FitAggregate
        /// Answers the strategy accepted into the aggregate.
        var results: Int
        var failures: [ClientFailure]
        /// Sampled clients whose answers carried the attack metric.
        var malicious: [String]
        /// Each answering site's own record-level DP-SGD ε (its fit metric), by client id.
        var siteEpsilon: [String: Double]
        /// An outlier update the round accepted, if any.
        var outlier: OutlierNote?
        /// What secure aggregation did, when the round used it.
        var secureAggregation: SecAggRoundSummary? = nil
        /// Virtual clock: the round's duration, the arrival of its slowest sampled client.
        var virtualSeconds: Double? = nil
    }

    /// A fit round's end: aggregated, or refused with the reason (the caller may retry).
    enum FitRoundOutcome {
        case aggregated(FitRound)
        case refused(String)
    }

    /// The fit round: `configureFit` samples, `FitIns` go out in parallel under `timeout`, each
    /// answer is screened (and clipped) and streamed into the strategy's aggregator, and the
    /// aggregator finishes with the round's failures.
    func fitRound(_ round: Int, of numRounds: Int, parameters: Parameters, state: StrategyState,
                  previousOutlier: OutlierNote?, timeout: Duration, ledger: inout TrafficLedger) async -> FitRoundOutcome {
        // On the virtual clock the strategy samples among the clients online this round.
        let candidates: any SamplingClientManager = options.systemModel.map {
            OnlineClients(base: clientManager, model: $0, slot: round)
        } ?? clientManager
        let fitCalls = strategy.configureFit(round: round, parameters: parameters, clientManager: candidates)
        guard !fitCalls.isEmpty else {
            let reason = "the strategy sampled no clients (\(clientManager.count) connected, \(candidates.count) online)"
            logger.error("round \(round): \(reason)")
            return .refused(reason)
        }
        ledger.note(fitCalls.map(\.client))
        logger.info("round \(round)/\(numRounds): fit on \(fitCalls.count) of \(clientManager.count) clients")
        options.observer?.roundStarted(round: round, of: numRounds, sampled: fitCalls.count)
        var aggregator = strategy.makeFitAggregator(FitRoundContext(round: round, parameters: parameters, state: state))
        if let config = options.secureAggregation {
            return await secureFitRound(round, calls: fitCalls, config: config, parameters: parameters,
                                        aggregator: &aggregator, timeout: timeout)
        }
        var norms: [(client: String, norm: Double)] = []
        var malicious: [String] = []
        var siteEpsilon: [String: Double] = [:]
        let fused = options.clipNorm == nil && aggregator.fusesUpdateNorm
        let failures = await FanOut.run(fitCalls, timeout: timeout,
                                        call: { try await $0.fit($1, timeout: $2) },
                                        onAnswer: { client, raw throws(ClientFailure) in
            if case .string = raw.metrics[attackMetricKey] { malicious.append(client.id) }
            if let e = raw.metrics[siteEpsilonMetricKey]?.doubleValue, e.isFinite, e >= 0 { siteEpsilon[client.id] = e }
            let norm: Double?
            if fused {
                norm = try screenAndAddFit(raw, from: client, global: parameters, previousOutlier: previousOutlier,
                                           into: &aggregator)
            } else {
                let (res, measured) = try screenFit(raw, from: client, global: parameters,
                                                    previousOutlier: previousOutlier)
                try aggregator.add(res, from: client)
                norm = measured
            }
            if let norm { norms.append((client.id, norm)) }
        })
        for f in failures { logger.warning("round \(round): fit failure: \(f)") }
        options.observer?.fitFinished(round: round, results: aggregator.resultCount, failures: failures)
        let aggregated: FitAggregate
        do throws(StrategyRefusal) {
            aggregated = try aggregator.finish(failures: failures)
        } catch {
            var reason = "\(aggregator.resultCount) results, \(failures.count) failures: \(error.reason)"
            if let note = previousOutlier, failures.contains(where: { $0.reason.contains("non-finite") }) {
                reason += "; this follows the outlier update of round \(note.round) from client \(note.clientID), which most likely poisoned the global model"
            }
            logger.error("round \(round): aggregation refused: \(reason)")
            return .refused(reason)
        }
        let outlier = OutlierNote.find(round: round, norms: norms)
        if let outlier { logger.warning("\(outlier)") }
        // A synchronous round lasts until its slowest sampled client's update arrives.
        let virtualSeconds = options.systemModel.map { model in
            fitCalls.map { model.fitSeconds($0.client, parameterCount: parameters.count) }.max() ?? 0
        }
        return .aggregated(FitRound(aggregate: aggregated, results: aggregator.resultCount, failures: failures,
                                    malicious: malicious, siteEpsilon: siteEpsilon, outlier: outlier,
                                    virtualSeconds: virtualSeconds))
    }

    /// The fit round under secure aggregation: `SecAggRoundDriver` runs SecAgg+ over the sampled
    /// clients (they train between the sharing and the masking), and the strategy's aggregator takes
    /// the unmasked average as one result standing for the clients in the sum.
    func secureFitRound(_ round: Int, calls: [(client: any ClientProxy, ins: FitIns)], config: SecAggConfig,
                        parameters: Parameters, aggregator: inout any FitAggregator,
                        timeout: Duration) async -> FitRoundOutcome {
        if let why = aggregator.secureAggregationRefusal {
            logger.error("round \(round): \(why)")
            return .refused(why)
        }
        let driver = SecAggRoundDriver(config: config, logger: logger)
        switch await driver.run(round: round, calls: calls, global: parameters, timeout: timeout) {
        case let .failed(reason, failures):
            for f in failures { logger.warning("round \(round): fit failure: \(f)") }
            options.observer?.fitFinished(round: round, results: 0, failures: failures)
            let why = "\(reason) (\(failures.count) of \(calls.count) clients failed)"
            logger.error("round \(round): secure aggregation failed, nothing unmasked: \(why)")
            return .refused(why)
        case let .aggregated(res, summary, failures, siteEpsilon):
            for f in failures { logger.warning("round \(round): fit failure: \(f)") }
            logger.info("round \(round): \(summary.line)")
            logger.info("round \(round): \(summary.phaseLine)")
            let aggregated: FitAggregate
            do throws(StrategyRefusal) {
                try aggregator.addSecureAggregate(res, clients: summary.sent)
                options.observer?.fitFinished(round: round, results: aggregator.resultCount, failures: failures)
                aggregated = try aggregator.finish(failures: failures)
            } catch {
                let reason = "\(summary.sent) clients in the secure sum, \(failures.count) failures: \(error.reason)"
                logger.error("round \(round): aggregation refused: \(reason)")
                return .refused(reason)
            }
            return .aggregated(FitRound(aggregate: aggregated, results: summary.sent, failures: failures, malicious: [],
                                        siteEpsilon: siteEpsilon, outlier: nil, secureAggregation: summary))
        }
    }

    /// What an evaluate round produced.
    struct EvaluateRound {
        /// The strategy's central evaluation (the server's own test set), if it has one.
        var central: (loss: Double, metrics: Metrics)?
        /// The aggregate of the clients' evaluations (empty when none were asked).
        var federated: (loss: Double?, metrics: Metrics)
        var failures: [ClientFailure]
    }

    /// The evaluate round of `parameters`: central evaluation, then `EvaluateIns` to the clients
    /// `configureEvaluate` picks, screened and aggregated by the strategy.
    func evaluateRound(_ round: Int, parameters: Parameters, timeout: Duration,
                       ledger: inout TrafficLedger) async throws(ServerError) -> EvaluateRound {
        var central: (loss: Double, metrics: Metrics)?
        do {
            central = try await strategy.evaluate(round: round, parameters: parameters)
        } catch {
            throw .centralEvaluationFailed(round: round, detail: "\(error)")
        }
        let evalCalls = strategy.configureEvaluate(round: round, parameters: parameters, clientManager: clientManager)
        ledger.note(evalCalls.map(\.client))
        var evalResults: [(client: any ClientProxy, res: EvaluateRes)] = []
        let evalFailures = await FanOut.run(evalCalls, timeout: timeout,
                                            call: { try await $0.evaluate($1, timeout: $2) },
                                            onAnswer: { client, res throws(ClientFailure) in
            try screenEvaluate(res, from: client)
            evalResults.append((client, res))
        })
        for f in evalFailures { logger.warning("round \(round): evaluate failure: \(f)") }
        var federated: (loss: Double?, metrics: Metrics) = (nil, [:])
        if !evalCalls.isEmpty {
            options.observer?.evaluateFinished(round: round, results: evalResults.count, failures: evalFailures)
            federated = strategy.aggregateEvaluate(round: round, results: evalResults, failures: evalFailures)
        }
        return EvaluateRound(central: central, federated: federated, failures: evalFailures)
    }

    /// Sends `finish` to every connected client, in parallel, bounded by `options.finishTimeout`.
    func finishAll(roundsCompleted: Int, reason: String, failed: Bool) async {
        let clients = clientManager.all().filter(\.needsFinish)
        let failures = await FanOut.run(clients.map { (client: $0, ins: reason) }, timeout: options.finishTimeout,
                                        call: { client, reason, _ in await client.finish(roundsCompleted: roundsCompleted, reason: reason, failed: failed) },
                                        onAnswer: { _, _ in })
        for f in failures { logger.warning("finish not delivered: \(f)") }
    }

    /// The per-round log line: round, clients ok/failed, loss, accuracy, seconds, bytes in/out.
    static func logLine(_ r: RoundRecord, of numRounds: Int, unit: String = "round") -> String {
        func num(_ x: Double?) -> String { x.map { String(format: "%.4f", $0) } ?? "n/a" }
        func mb(_ b: UInt64) -> String {
            b < 10_000 ? "\(b) B" : String(format: "%.2f MB", Double(b) / 1_000_000)
        }
        var dp = r.privacy.map { ", ε \(num($0.epsilon)) at δ \($0.delta)" } ?? ""
        if let sites = r.siteEpsilon {
            dp += ", DP-SGD ε per site: " + sites.sorted { $0.key < $1.key }.map { "\($0.key) \(num($0.value))" }.joined(separator: ", ")
        }
        let secagg = r.secureAggregation.map { ", \($0.line)" } ?? ""
        var clock = ""
        if let v = r.virtualSeconds, let t = r.virtualTime {
            clock = String(format: ", virtual %.2f s (clock %.2f s)", v, t)
        }
        if let s = r.staleness { clock += String(format: ", staleness %.2f", s) }
        if let d = r.discarded, d > 0 { clock += ", \(d) stale discarded" }
        return "\(unit) \(r.round)/\(numRounds): \(r.fitClients) ok, \(r.failures) failed, loss \(num(r.loss)), "
            + "accuracy \(num(r.accuracy)), \(String(format: "%.2f", r.seconds)) s, in \(mb(r.bytesIn)), out \(mb(r.bytesOut))" + dp + secagg + clock
    }
}
