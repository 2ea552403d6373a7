import FlowerBase
import Foundation

/// What one completed round produced: the fields of a `history.jsonl` line plus the metrics behind them.
public struct RoundRecord: Sendable, Equatable, Codable {
    /// Federated round, starting at 1.
    public var round: Int
    /// Loss of the new global model: central evaluation when the server has data, else federated.
    public var loss: Double?
    /// Accuracy of the new global model, same source as `loss`.
    public var accuracy: Double?
    /// Clients whose fit result was aggregated.
    public var fitClients: Int
    /// Clients lost this round (fit and evaluate: errors, timeouts, rejected updates).
    public var failures: Int
    /// Wall time of the round, seconds.
    public var seconds: Double
    /// Bytes received from clients during the round (0 when the transport does not count).
    public var bytesIn: UInt64
    /// Bytes sent to clients during the round.
    public var bytesOut: UInt64
    /// Aggregated fit metrics (from clients' `FitRes.metrics`).
    public var fitMetrics: Metrics
    /// Central evaluation metrics, when the server evaluated.
    public var centralMetrics: Metrics
    /// Federated evaluation loss and metrics, when clients evaluated.
    public var federatedLoss: Double?
    /// Aggregated federated evaluation metrics.
    public var federatedMetrics: Metrics
    /// Sampled clients whose answers declared an attack simulation (`flwr simulate --malicious`,
    /// `flwr client --attack`), sorted; nil when none.
    public var malicious: [String]?
    /// User-level (ε, δ) spent by all models released up to this round (DP strategies only).
    public var privacy: PrivacySpent?
    /// Record-level DP-SGD: the ε each site that answered reported (`siteEpsilonMetricKey`), by
    /// client id; nil when none did.
    public var siteEpsilon: [String: Double]?
    /// Secure aggregation (`--secagg`): who sent, dropped and was recovered; nil without it.
    public var secureAggregation: SecAggRoundSummary?
    /// Virtual clock (`flwr simulate --client-speed/--link-mbps/--client-availability`, `--mode
    /// async`): the virtual seconds this round (or server update) took, nil without the clock.
    public var virtualSeconds: Double? = nil
    /// Virtual clock: the virtual time at the end of this round, seconds since the first started.
    public var virtualTime: Double? = nil
    /// Asynchronous FedBuff: mean staleness (server versions behind) of the updates applied.
    public var staleness: Double? = nil
    /// Asynchronous FedBuff: results discarded since the previous update for exceeding --max-staleness.
    public var discarded: Int? = nil

    /// A record; metrics default to empty.
    public init(round: Int, loss: Double?, accuracy: Double?, fitClients: Int, failures: Int,
                seconds: Double, bytesIn: UInt64 = 0, bytesOut: UInt64 = 0, fitMetrics: Metrics = [:],
                centralMetrics: Metrics = [:], federatedLoss: Double? = nil, federatedMetrics: Metrics = [:],
                malicious: [String]? = nil, privacy: PrivacySpent? = nil, siteEpsilon: [String: Double]? = nil,
                secureAggregation: SecAggRoundSummary? = nil) {
        self.round = round
        self.loss = loss
        self.accuracy = accuracy
        self.fitClients = fitClients
        self.failures = failures
        self.seconds = seconds
        self.bytesIn = bytesIn
        self.bytesOut = bytesOut
        self.fitMetrics = fitMetrics
        self.centralMetrics = centralMetrics
        self.federatedLoss = federatedLoss
        self.federatedMetrics = federatedMetrics
        self.malicious = malicious
        self.privacy = privacy
        self.siteEpsilon = siteEpsilon
        self.secureAggregation = secureAggregation
    }

    /// The site with the largest DP-SGD ε this round, if any site reported one.
    public var worstSiteEpsilon: (site: String, epsilon: Double)? {
        siteEpsilon?.max { ($0.value, $1.key) < ($1.value, $0.key) }.map { ($0.key, $0.value) }
    }

    /// The `history.jsonl` line (no newline): exactly `round, loss, accuracy, fit_clients,
    /// failures, seconds, bytes_in, bytes_out`, in that order; a missing or non-finite value is
    /// `null`. A round with malicious clients (attack simulation) adds `"malicious":["id",...]`;
    /// a DP round adds `"epsilon"` and `"delta"` (the user-level guarantee so far; ε = ∞ is `null`);
    /// a round whose sites train with DP-SGD adds `"site_epsilon":{"client id": ε, ...}`; a round under
    /// secure aggregation adds `"secagg":{"sampled":n,"sent":s,"dropped":d,"recovered":r}`; on the
    /// virtual clock a round adds `"virtual_seconds"` and `"virtual_time"` (beside the wall
    /// `seconds`); an asynchronous (FedBuff) update adds `"staleness"` (mean) and `"discarded"`.
    public var jsonLine: String {
        var members: [(key: String, json: String)] = [
            ("round", "\(round)"), ("loss", JSONText.number(loss)), ("accuracy", JSONText.number(accuracy)),
            ("fit_clients", "\(fitClients)"), ("failures", "\(failures)"), ("seconds", JSONText.number(seconds)),
            ("bytes_in", "\(bytesIn)"), ("bytes_out", "\(bytesOut)"),
        ]
        if let malicious { members.append(("malicious", JSONText.array(malicious.map(JSONText.string)))) }
        if let privacy {
            members += [("epsilon", JSONText.number(privacy.epsilon)), ("delta", JSONText.number(privacy.delta))]
        }
        if let sites = siteEpsilon {
            members.append(("site_epsilon", JSONText.object(sites.sorted { $0.key < $1.key }.map { ($0.key, JSONText.number($0.value)) })))
        }
        if let a = secureAggregation {
            members.append(("secagg", JSONText.object([("sampled", "\(a.sampled)"), ("sent", "\(a.sent)"),
                                                       ("dropped", "\(a.dropped)"), ("recovered", "\(a.recovered)")])))
        }
        if let v = virtualSeconds { members.append(("virtual_seconds", JSONText.number(v))) }
        if let v = virtualTime { members.append(("virtual_time", JSONText.number(v))) }
        if let s = staleness { members.append(("staleness", JSONText.number(s))) }
        if let d = discarded { members.append(("discarded", "\(d)")) }
        return JSONText.object(members)
    }
}

/// Per-round records of a training run (Flower's `History`), in round order.
public struct History: Sendable, Equatable, Codable {
    /// One record per completed round.
    public var rounds: [RoundRecord]

    /// A history holding `rounds`.
    public init(rounds: [RoundRecord] = []) { self.rounds = rounds }

    /// The last completed round (0 before the first).
    public var lastRound: Int { rounds.last?.round ?? 0 }

    /// All records as `history.jsonl` text, one line each, newline-terminated.
    public var jsonLines: String { rounds.map { $0.jsonLine + "\n" }.joined() }

    /// The run summary's DP-SGD line: the largest ε any site reported in any round (sites'
    /// accounts only grow, so it is the worst site's final ε), or nil when no site used DP-SGD.
    public var worstSiteEpsilonSummary: String? {
        let worst = rounds.compactMap { r in r.worstSiteEpsilon.map { (round: r.round, site: $0.site, epsilon: $0.epsilon) } }
            .max { ($0.epsilon, $1.round) < ($1.epsilon, $0.round) }
        guard let worst else { return nil }
        return "record-level DP-SGD: worst site \(worst.site) at epsilon \(String(format: "%.4g", worst.epsilon)) (round \(worst.round))"
    }
}

/// Appends `history.jsonl` lines as rounds complete.
public struct HistoryLog: Sendable {
    /// Path of the `.jsonl` file.
    public let path: String

    /// A log writing to `path`.
    public init(path: String) { self.path = path }

    /// Replaces the file with exactly `history`'s lines, atomically (used at start and on resume).
    public func reset(to history: History) throws(FileError) {
        try AtomicFile.write(Array(history.jsonLines.utf8), to: path)
    }

    /// Appends one record's line.
    public func append(_ record: RoundRecord) throws(FileError) {
        let line = Array((record.jsonLine + "\n").utf8)
        guard let handle = FileHandle(forWritingAtPath: path) else {
            throw FileError.open(path: path, detail: "cannot open for appending")
        }
        defer { try? handle.close() }
        do {
            _ = try handle.seekToEnd()
            try handle.write(contentsOf: line)
        } catch {
            throw FileError.write(path: path, detail: "\(error)")
        }
    }
}
