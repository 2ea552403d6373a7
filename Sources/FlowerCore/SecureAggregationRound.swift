// A SecAgg+ fit round over `ClientProxy`s: the server side (`SecAggRoundDriver`, which drives the
// `SecAggServer` state machine over the sampled clients) and the client side (`SecAggParticipant`,
// which trains with the user's `Client` and runs the `SecAggClient` state machine).
//
// Protocol: Bell et al., "Secure Single-Server Aggregation with (Poly)Logarithmic Overhead", CCS 2020,
// on the rounds of Bonawitz et al., "Practical Secure Aggregation for Privacy-Preserving Machine
// Learning", CCS 2017; message order and limits in proto/secagg.md, deviations of the core in
// Sources/SecureAggregation/SecAggClient.swift. Deviations of this round:
// - What is masked is the update, local model − global model (the server adds the global model back),
//   not the local model: clipping to [−R, R] then bounds the step, as the protocol intends, and R can
//   be small, which makes the quantisation finer for the same modulus.
// - The client trains between receiving its forwarded shares and sending its masked input (the
//   `FitIns` travels with the forwarded shares), so a client that drops during training is a client
//   that dropped before masking: its pairwise masks are removed by reconstructing its mask key.
// - Fit metrics (training loss, a site's DP-SGD ε) travel in clear next to the masked vector: they are
//   scalars the operator asked for; the example count does not (it is summed masked as the weight).
import FlowerBase
import Foundation
import Logging
@_exported import SecureAggregation

/// One server → client step of a secure-aggregation fit round.
public enum SecAggInstruction: Sendable {
    /// Starts the round for the client (it answers with its public keys).
    case setup(SecAggSetup)
    /// Its neighbours' public keys (it answers with one encrypted share pair per neighbour).
    case neighbourKeys(SecAggNeighbourKeys)
    /// The shares addressed to it and the fit instruction: it trains, then answers with its masked update.
    case forwardedShares(SecAggForwardedShares, fit: FitIns)
    /// Whose shares to reveal (it answers with them).
    case unmaskRequest(SecAggUnmaskRequest)

    /// The message's name in logs and errors.
    public var name: String {
        switch self {
        case .setup: return "secure-aggregation setup"
        case .neighbourKeys: return "neighbour keys"
        case .forwardedShares: return "forwarded shares"
        case .unmaskRequest: return "unmask request"
        }
    }
}

/// One client → server step of a secure-aggregation fit round.
public enum SecAggAnswer: Sendable {
    case publicKeys(SecAggPublicKeys)
    case shareKeys(SecAggShareKeys)
    /// The masked update and the fit metrics (in clear; see the file header).
    case maskedInput(SecAggMaskedInput, metrics: Metrics)
    case unmaskResponse(SecAggUnmaskResponse)

    /// The message's name in logs and errors.
    public var name: String {
        switch self {
        case .publicKeys: return "public keys"
        case .shareKeys: return "encrypted shares"
        case .maskedInput: return "masked input"
        case .unmaskResponse: return "unmask response"
        }
    }
}

/// Why a client cannot take part in a secure-aggregation round although it answered.
public enum SecAggParticipationError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The client's transport (or its binary) does not carry secure-aggregation messages.
    case unsupported(clientID: String, detail: String)
    /// The client's training failed; it sends no masked input (it drops out of the round).
    case fitFailed(status: String)
    /// The trained model's layout differs from the global model's.
    case layoutMismatch(String)
    /// The client refused a step of the round (its answer says why: a forged request, a failed training, ...).
    case refused(clientID: String, reason: String)

    public var description: String {
        switch self {
        case let .unsupported(id, detail):
            return "client \(id) does not support secure aggregation (\(detail)); upgrade its flwr binary or run the server without --secagg"
        case let .fitFailed(status):
            return "secure aggregation: local training failed (\(status)); the client drops out of this round"
        case let .refused(id, reason):
            return "client \(id) refused a secure-aggregation step: \(reason)"
        case let .layoutMismatch(detail):
            return "secure aggregation: the trained model's layout differs from the global model's: \(detail); client and server must build the same model"
        }
    }
}

/// What a secure-aggregation fit round did: "secure aggregation: n sent, m dropped, recovered".
public struct SecAggRoundSummary: Sendable, Equatable, Codable {
    /// Clients sampled (each was sent the setup).
    public var sampled: Int
    /// Clients whose masked input is in the sum.
    public var sent: Int
    /// Sampled clients that are not in the sum (dropped at any step).
    public var dropped: Int
    /// Dropped clients whose pairwise masks were removed by reconstructing their mask key.
    public var recovered: Int
    /// Largest error per coordinate of the average from quantisation, 2R/(Q − 1).
    public var quantizationErrorBound: Double
    /// Wall time and traffic of each phase, in order (traffic only from transports that count it).
    public var phases: [SecAggPhaseReport]

    public init(sampled: Int, sent: Int, dropped: Int, recovered: Int, quantizationErrorBound: Double,
                phases: [SecAggPhaseReport] = []) {
        self.sampled = sampled
        self.sent = sent
        self.dropped = dropped
        self.recovered = recovered
        self.quantizationErrorBound = quantizationErrorBound
        self.phases = phases
    }

    /// The per-phase log line: seconds, and bytes per sampled client each way when the transport counts them.
    public var phaseLine: String {
        let counted = phases.contains { $0.bytesUp > 0 || $0.bytesDown > 0 }
        return "secure aggregation phases: " + phases.map { p in
            let n = Double(max(sampled, 1))
            let bytes = counted ? String(format: ", %.0f B up / %.0f B down per client", Double(p.bytesUp) / n, Double(p.bytesDown) / n) : ""
            return p.name + String(format: " %.3f s", p.seconds) + bytes
        }.joined(separator: "; ")
    }

    /// The log and history line of a round that completed.
    public var line: String {
        "secure aggregation: \(sent) sent, \(dropped) dropped, recovered"
            + (recovered > 0 ? " (\(recovered) dropped client mask\(recovered == 1 ? "" : "s") removed)" : "")
    }
}

/// One phase of a secure-aggregation round as the server saw it: from sending its messages to
/// closing it (client work and the network included), and the frames moved, summed over the clients.
public struct SecAggPhaseReport: Sendable, Equatable, Codable {
    /// "key exchange", "sharing", "training + masking" or "unmasking".
    public var name: String
    public var seconds: Double
    /// Client → server bytes (frames as on the wire).
    public var bytesUp: UInt64
    /// Server → client bytes.
    public var bytesDown: UInt64

    public init(name: String, seconds: Double, bytesUp: UInt64, bytesDown: UInt64) {
        self.name = name
        self.seconds = seconds
        self.bytesUp = bytesUp
        self.bytesDown = bytesDown
    }
}

extension ClientProxy {
    /// Default: this proxy's transport cannot carry secure aggregation, so the client is refused.
    public func secureAggregation(_ ins: SecAggInstruction, timeout: Duration) async throws -> SecAggAnswer {
        throw SecAggParticipationError.unsupported(clientID: id, detail: "its connection type \(type(of: self)) carries no secure-aggregation messages")
    }
}

/// How a secure-aggregation fit round ended.
public enum SecAggRoundOutcome: Sendable {
    /// The unmasked weighted average as one `FitRes` (its `numExamples` is the summed weight), the
    /// summary and the clients lost on the way.
    case aggregated(FitRes, SecAggRoundSummary, failures: [ClientFailure], siteEpsilon: [String: Double])
    /// The round failed and nothing was unmasked.
    case failed(reason: String, failures: [ClientFailure])
}

/// The server side of a SecAgg+ fit round: drives one `SecAggServer` over the sampled clients'
/// proxies, one phase at a time (each phase gets the round deadline; a client not heard from by then
/// has dropped), and hands back the unmasked average.
public struct SecAggRoundDriver: Sendable {
    public let config: SecAggConfig
    let logger: Logger

    public init(config: SecAggConfig, logger: Logger = Logger(label: "flwr.secagg")) {
        self.config = config
        self.logger = logger
    }

    /// Runs the round for `calls` (the sampled clients and their fit instructions) around the global
    /// model `global`. The round identifier the messages carry is `round` in the high 32 bits and a
    /// random nonce in the low 32, so no message of another round or of a retried attempt is taken.
    public func run(round: Int, calls: [(client: any ClientProxy, ins: FitIns)], global: Parameters,
                    timeout: Duration) async -> SecAggRoundOutcome {
        var rng = SystemRandomNumberGenerator()
        let roundID = UInt64(truncatingIfNeeded: max(round, 0)) << 32 | UInt64(UInt32.random(in: 0 ... .max, using: &rng))
        var server: SecAggServer
        do {
            server = try SecAggServer(round: roundID, config: config, numClients: calls.count, vectorLength: global.count)
        } catch {
            return .failed(reason: "\(error)", failures: [])
        }
        var index: [ObjectIdentifier: UInt32] = [:]
        for (i, c) in calls.enumerated() { index[ObjectIdentifier(c.client)] = UInt32(i) }
        var failures: [ClientFailure] = []
        func refuse(_ client: any ClientProxy, _ reason: String) -> ClientFailure {
            ClientFailure(clientID: client.id, kind: .rejected, reason: reason)
        }
        /// The sender index of `client`'s answer must be the index the server gave it.
        func check(_ sender: UInt32, _ client: any ClientProxy) throws(ClientFailure) {
            guard index[ObjectIdentifier(client)] == sender else {
                throw refuse(client, "secure aggregation: answer signed as client \(sender), but this connection is client \(index[ObjectIdentifier(client)].map { "\($0)" } ?? "?")")
            }
        }
        func feed(_ client: any ClientProxy, _ body: () throws(SecAggError) -> Void) throws(ClientFailure) {
            do throws(SecAggError) { try body() } catch { throw refuse(client, error.description) }
        }
        func wrong(_ client: any ClientProxy, _ got: SecAggAnswer, expected: String) -> ClientFailure {
            refuse(client, "secure aggregation: answered \(got.name) where \(expected) was expected")
        }
        func closed<T>(_ body: () throws(SecAggError) -> T) -> Result<T, SecAggError> {
            do throws(SecAggError) { return .success(try body()) } catch { return .failure(error) }
        }

        var phases: [SecAggPhaseReport] = []
        let proxies = calls.map(\.client)
        func counters() -> (up: UInt64, down: UInt64) {
            proxies.reduce((UInt64(0), UInt64(0))) { acc, p in
                guard let c = p as? any TrafficCounting else { return acc }
                return (acc.0 &+ c.bytesIn, acc.1 &+ c.bytesOut)
            }
        }
        var phaseStart = (clock: ContinuousClock.now, bytes: counters())
        func closePhase(_ name: String) {
            let now = counters()
            phases.append(SecAggPhaseReport(name: name, seconds: phaseStart.clock.duration(to: .now).seconds,
                                            bytesUp: now.up &- phaseStart.bytes.up, bytesDown: now.down &- phaseStart.bytes.down))
            phaseStart = (.now, now)
        }

        // Round 0: setup out, public keys back.
        let setups = calls.enumerated().map { i, c in (client: c.client, ins: SecAggInstruction.setup(server.setup(for: UInt32(i)))) }
        failures += await FanOut.run(setups, timeout: timeout, call: { try await $0.secureAggregation($1, timeout: $2) },
                                     onAnswer: { client, answer throws(ClientFailure) in
            guard case .publicKeys(let m) = answer else { throw wrong(client, answer, expected: "public keys") }
            try check(m.sender, client)
            try feed(client) { () throws(SecAggError) in try server.receive(m) }
        })
        var graphRNG = SystemRandomNumberGenerator()
        let neighbourKeys: [SecAggNeighbourKeys]
        switch closed({ () throws(SecAggError) in try server.neighbourKeys(using: &graphRNG) }) {
        case .success(let m): neighbourKeys = m
        case .failure(let e): return .failed(reason: e.description, failures: failures)
        }
        closePhase("key exchange")

        // Round 1: neighbour keys out, encrypted shares back.
        let shareCalls = neighbourKeys.map { m in (client: calls[Int(m.receiver)].client, ins: SecAggInstruction.neighbourKeys(m)) }
        failures += await FanOut.run(shareCalls, timeout: timeout, call: { try await $0.secureAggregation($1, timeout: $2) },
                                     onAnswer: { client, answer throws(ClientFailure) in
            guard case .shareKeys(let m) = answer else { throw wrong(client, answer, expected: "encrypted shares") }
            try check(m.sender, client)
            try feed(client) { () throws(SecAggError) in try server.receive(m) }
        })
        let forwarded: [SecAggForwardedShares]
        switch closed({ () throws(SecAggError) in try server.forwardShares() }) {
        case .success(let m): forwarded = m
        case .failure(let e): return .failed(reason: e.description, failures: failures)
        }
        closePhase("sharing")

        // Round 2: forwarded shares and the fit instruction out, masked updates back.
        var metrics: [Metrics] = []
        var siteEpsilon: [String: Double] = [:]
        let maskCalls = forwarded.map { m in
            (client: calls[Int(m.receiver)].client, ins: SecAggInstruction.forwardedShares(m, fit: calls[Int(m.receiver)].ins))
        }
        failures += await FanOut.run(maskCalls, timeout: timeout, call: { try await $0.secureAggregation($1, timeout: $2) },
                                     onAnswer: { client, answer throws(ClientFailure) in
            guard case .maskedInput(let m, let clientMetrics) = answer else { throw wrong(client, answer, expected: "masked input") }
            try check(m.sender, client)
            do throws(AnswerRejection) { try AnswerChecks.checkMetrics(clientMetrics) } catch {
                throw refuse(client, "update refused: \(error)")
            }
            try feed(client) { () throws(SecAggError) in try server.receive(m) }
            metrics.append(clientMetrics)
            if let e = clientMetrics[siteEpsilonMetricKey]?.doubleValue, e.isFinite, e >= 0 { siteEpsilon[client.id] = e }
        })
        let requests: [SecAggUnmaskRequest]
        switch closed({ () throws(SecAggError) in try server.unmaskRequests() }) {
        case .success(let m): requests = m
        case .failure(let e): return .failed(reason: e.description, failures: failures)
        }
        closePhase("training + masking")

        // Round 3: unmask requests out, shares back; then the sum is unmasked.
        let unmaskCalls = requests.map { m in (client: calls[Int(m.receiver)].client, ins: SecAggInstruction.unmaskRequest(m)) }
        failures += await FanOut.run(unmaskCalls, timeout: timeout, call: { try await $0.secureAggregation($1, timeout: $2) },
                                     onAnswer: { client, answer throws(ClientFailure) in
            guard case .unmaskResponse(let m) = answer else { throw wrong(client, answer, expected: "unmask response") }
            try check(m.sender, client)
            try feed(client) { () throws(SecAggError) in try server.receive(m) }
        })
        let result: SecAggResult
        switch closed({ () throws(SecAggError) in try server.finish() }) {
        case .success(let r): result = r
        case .failure(let e): return .failed(reason: e.description, failures: failures)
        }
        closePhase("unmasking")

        var parameters = global
        for i in parameters.values.indices { parameters.values[i] += result.average[i] }
        let summary = SecAggRoundSummary(sampled: result.sampled, sent: result.aggregated, dropped: result.dropped,
                                         recovered: result.recovered, quantizationErrorBound: result.quantizationErrorBound,
                                         phases: phases)
        let res = FitRes(round: round, parameters: parameters, numExamples: Int(result.weightSum),
                         metrics: Self.meanMetrics(metrics))
        return .aggregated(res, summary, failures: failures, siteEpsilon: siteEpsilon)
    }

    /// The unweighted mean of each numeric metric over the clients that reported it (the clients'
    /// example counts stay masked, so the metrics cannot be weighted by them).
    static func meanMetrics(_ all: [Metrics]) -> Metrics {
        var sums: [String: (sum: Double, count: Int)] = [:]
        for m in all {
            for (k, v) in m {
                guard let d = v.doubleValue, d.isFinite, k != attackMetricKey else { continue }
                sums[k, default: (0, 0)].sum += d
                sums[k, default: (0, 0)].count += 1
            }
        }
        return sums.mapValues { .double($0.sum / Double($0.count)) }
    }
}

/// The client side of a SecAgg+ fit round: one per connection, holding the round's `SecAggClient`.
/// Training happens on the user's `Client` between the forwarded shares and the masked input.
public actor SecAggParticipant {
    let client: any Client
    var machine: SecAggClient?

    public init(client: any Client) {
        self.client = client
    }

    /// Answers one server message, or throws why it refuses it (the round's state is unchanged,
    /// except after a request for both kinds of share of one peer, which ends the round for this client).
    public func handle(_ ins: SecAggInstruction) async throws -> SecAggAnswer {
        switch ins {
        case .setup(let setup):
            let c = try SecAggClient(setup: setup)
            machine = c
            return .publicKeys(c.publicKeys)
        case .neighbourKeys(let m):
            var c = try current(ins)
            let answer = try c.shareKeys(m)
            machine = c
            return .shareKeys(answer)
        case .forwardedShares(let m, let fit):
            var c = try current(ins)
            // Checked before training: the shares (a wrong round or forged list costs no epoch) and the model size.
            guard fit.parameters.count == Int(c.setup.vectorLength) else {
                throw SecAggError.updateLengthMismatch(expected: Int(c.setup.vectorLength), got: fit.parameters.count)
            }
            try c.receiveShares(m)
            machine = c
            let round = c.setup.round
            let res = try await client.fit(fit)
            guard res.status.code == .ok else {
                throw SecAggParticipationError.fitFailed(status: "\(res.status.code): \(res.status.message)")
            }
            if let mismatch = res.parameters.layoutMismatch(against: fit.parameters) {
                throw SecAggParticipationError.layoutMismatch(mismatch)
            }
            guard var after = machine, after.setup.round == round else {
                throw SecAggError.unexpectedMessage(message: "masking the update", state: "the round changed during training")
            }
            var update = res.parameters.values
            fit.parameters.values.withUnsafeBufferPointer { g in
                for i in update.indices { update[i] -= g[i] }
            }
            let masked = try after.maskedInput(update: update, numExamples: res.numExamples)
            machine = after
            return .maskedInput(masked, metrics: res.metrics)
        case .unmaskRequest(let m):
            var c = try current(ins)
            defer { machine = c }
            return .unmaskResponse(try c.unmask(m))
        }
    }

    private func current(_ ins: SecAggInstruction) throws(SecAggError) -> SecAggClient {
        guard let machine else {
            throw .unexpectedMessage(message: ins.name, state: "no secure-aggregation round was set up on this connection")
        }
        return machine
    }
}
