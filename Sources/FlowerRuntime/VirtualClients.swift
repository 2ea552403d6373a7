// Virtual clients (`flwr simulate --transport virtual`): cross-device scale in one process. An
// idle client is a description — its index, hence its identity, its slice of a shared index list
// into the shared training set, its ledger path — and nothing else: no socket, no task, no model,
// no copy of images. The server samples it like any connected client (it is a `ClientProxy` in
// the same `InMemoryClientManager`, under the same identity a TCP client has); when sampled, it
// materialises its partition, borrows a model from the pool, runs the same `ModelClient` a TCP
// client runs, and returns the answer. One round loop (`Server`), two ways to reach clients.
import Attacks
import CIFARLoader
import FlowerCore
import FlowerLearning
import FlowerOps
import Foundation
import Logging
import Synchronization

/// How `flwr simulate` reaches its clients.
public enum SimulationTransport: String, Sendable, CaseIterable {
    /// In-process clients built when sampled (no socket, task or data copy while idle).
    case virtual
    /// Every client a `WireClient` on its own loopback TCP connection (the deployment's path).
    case tcp

    /// The most clients for which the default is `tcp`: up to here the deployment's code path
    /// (sockets, frames, handshakes) is exercised at a cost of two sockets and a task per client;
    /// above, that cost grows towards the process's file limit and buys nothing.
    public static let tcpDefaultLimit = 100

    /// `tcp` for at most `tcpDefaultLimit` clients, else `virtual`.
    public static func automatic(clients: Int) -> SimulationTransport {
        clients > tcpDefaultLimit ? .virtual : .tcp
    }
}

/// The `fractionFit` under which FedAvg-based sampling (⌊fraction · N⌋ clients) picks exactly
/// `perRound` of `clients`: (M + ½)/N keeps the product's floor at M whatever the division rounds to.
public func samplingFraction(clientsPerRound perRound: Int, clients: Int) -> Double {
    perRound >= clients ? 1 : (Double(perRound) + 0.5) / Double(clients)
}

/// Why a simulation cannot be set up as asked; each case says what to do.
public enum SimulationError: Error, CustomStringConvertible, Equatable {
    /// Dirichlet partitioning needs at least one example per client; `largest`, when the labels
    /// were at hand, is the most clients the split makes at this α (`dirichletPartitionLimit`).
    case tooManyClientsForDirichlet(clients: Int, samples: Int, dataset: String, alpha: Double = 0, largest: Int? = nil)
    /// Unequal sizes are an IID split's; a Dirichlet split draws its own.
    case sizesNeedIID(sizes: PartitionSizes, alpha: Double)
    /// The data-level Laplace release is made once per partition before training: TCP clients only.
    case dataPrivacyNeedsTCP
    /// Update and broadcast compression are properties of the wire: TCP clients only.
    case updateCompressionNeedsTCP
    /// The virtual clock computes arrivals of in-process clients: virtual clients only.
    case virtualClockNeedsVirtual
    /// The virtual clock or `--mode async` cannot run with this option (the reason says which and what to do).
    case asyncUnsupported(String)
    /// `--resume` cannot continue from the checkpoint given (the reason says why and what to do).
    case resumeRefused(String)

    public var description: String {
        switch self {
        case .tooManyClientsForDirichlet(let clients, let samples, let dataset, let alpha, let largest):
            if let largest {
                return "--alpha partitioning of \(dataset) gives every client at least one of its \(samples) training examples, so at most \(samples) clients, and a Dirichlet split with α \(alpha) makes about \(largest) at most (some partitions fall far below the mean); got --clients \(clients): lower --clients to \(largest) or fewer, raise --alpha, or use --alpha 0 (IID, where clients beyond \(samples) reuse examples)"
            }
            return "--alpha partitioning of \(dataset) gives every client at least one of its \(samples) training examples, so at most \(samples) clients; got --clients \(clients): lower --clients to \(samples) or fewer, or use --alpha 0 (IID, where clients beyond \(samples) reuse examples)"
        case .sizesNeedIID(let sizes, let alpha):
            return "--partition-sizes \(sizes) sizes an IID split; the Dirichlet split (--alpha \(alpha)) already draws every client's size along with its labels: use --alpha 0 for lognormal sizes, or equal sizes for label skew"
        case .dataPrivacyNeedsTCP:
            return "--dp-epsilon releases every partition once, before training, and keeps the released copy: that needs --transport tcp (virtual clients hold no data between rounds); for differential privacy with virtual clients use --dp-noise-multiplier (user-level DP-FedAvg) or --dp-sgd (record-level DP-SGD)"
        case .updateCompressionNeedsTCP:
            return "--update-compression, --broadcast-compression and --no-zlib encode what travels over FlowerWire; virtual clients send nothing over a wire: use --transport tcp (the default up to 100 clients)"
        case .asyncUnsupported(let why), .resumeRefused(let why):
            return why
        case .virtualClockNeedsVirtual:
            return "--client-speed, --link-mbps, --client-availability and --mode async run on a virtual clock that computes when each virtual client's result arrives; TCP clients run on the real clock: add --transport virtual"
        }
    }
}

/// The Dirichlet minimum partition size for `clients` clients over `samples` examples: 10, as
/// always, while the data allows it, then `samples / clients` (at least one). Throws when fewer
/// than one example per client is possible.
public func simulationPartitioner(alpha: Double, sizes: PartitionSizes = .equal, clients: Int, samples: Int,
                                  dataset: String) throws -> Partitioner {
    guard alpha > 0 else { return .iid(sizes: sizes) }
    guard sizes == .equal else { throw SimulationError.sizesNeedIID(sizes: sizes, alpha: alpha) }
    guard clients <= samples else {
        throw SimulationError.tooManyClientsForDirichlet(clients: clients, samples: samples, dataset: dataset)
    }
    return .dirichlet(alpha: alpha, minPartitionSize: min(10, samples / clients))
}

/// Every client's share of the training set, held compactly: client i's examples are
/// `data[indices[offsets[i] ..< offsets[i + 1]]]`, and `data` holds the examples some client uses.
public struct VirtualPartitions: Sendable {
    /// The training examples the clients use (all of them unless --max-train-examples cut some).
    public let data: Dataset
    /// Every client's example positions in `data`, one client after the other.
    let indices: [Int32]
    /// Client i's examples start at `offsets[i]`; `offsets[clients]` is `indices.count`.
    let offsets: [Int]

    /// Number of clients.
    public var clients: Int { offsets.count - 1 }

    /// Positions in `data` of client `i`'s examples, in the order it trains on them.
    public func examples(of i: Int) -> ArraySlice<Int32> { indices[offsets[i] ..< offsets[i + 1]] }

    /// Client `i`'s training data (a compact copy of its examples, made when it is sampled).
    public func dataset(of i: Int) -> Dataset { data.subset(examples(of: i).map(Int.init)) }

    /// The split of `train` among `clients`: the same partitions as the TCP simulation (Dirichlet
    /// for α > 0, else IID with `sizes`; each cut to `maxTrainExamples`). Equal IID with more clients than examples
    /// gives every client one example, in passes over freshly shuffled orders, so examples are
    /// shared by ⌈clients / examples⌉ clients.
    public static func make(train: Dataset, clients: Int, alpha: Double, sizes: PartitionSizes = .equal, seed: UInt64,
                            maxTrainExamples: Int?,
                            logger: Logger) throws -> VirtualPartitions {
        let n = train.count
        guard n > 0 else { throw RuntimeError.emptyData("\(train.name) holds no training examples") }
        var flat: [Int32] = []
        var offsets: [Int] = [0]
        offsets.reserveCapacity(clients + 1)
        let cap = maxTrainExamples ?? Int.max
        if alpha == 0 && sizes == .equal && clients > n {
            logger.warning("\(clients) clients exceed the \(n) training examples of \(train.name): IID clients hold one example each, and every example is shared by up to \((clients + n - 1) / n) clients")
            flat.reserveCapacity(clients)
            var order: [Int] = []
            for i in 0 ..< clients {
                if i % n == 0 {
                    var rng = SplitMix64(seed: SplitMix64.derive(seed: seed, stream: 0x5041_5254 &+ UInt64(i / n)))
                    order = Array(0 ..< n)
                    order.shuffle(using: &rng)
                }
                flat.append(Int32(order[i % n]))
                offsets.append(flat.count)
            }
        } else {
            if alpha > 0, sizes == .equal, clients > n {
                throw SimulationError.tooManyClientsForDirichlet(
                    clients: clients, samples: n, dataset: train.name, alpha: alpha,
                    largest: dirichletPartitionLimit(labels: train.labels, alpha: alpha, minPartitionSize: 1))
            }
            let scheme = try simulationPartitioner(alpha: alpha, sizes: sizes, clients: clients, samples: n, dataset: train.name)
            if case .dirichlet(_, let minSize) = scheme, minSize < 10 {
                logger.info("Dirichlet partitions of at least \(minSize) examples (10 would need \(10 * clients) examples)")
            }
            let parts: [[Int]]
            do {
                parts = try CIFARLoader.partition(labels: train.labels, numPartitions: clients, scheme: scheme, seed: seed)
            } catch LoaderError.partitionTooSmall(_, _, let minSize, _, _, _, _, _) where minSize > 1 {
                // The scaled minimum is out of reach at this many clients (a Dirichlet partition's
                // size spreads like Gamma(Kα), far below the mean for small α): the largest minimum
                // the estimate of `dirichletPartitionLimit` allows, at least 1. Splits that meet
                // the first minimum are unchanged.
                let fit = (1 ..< minSize).reversed().first {
                    dirichletPartitionLimit(labels: train.labels, alpha: alpha, minPartitionSize: $0) >= clients
                } ?? 1
                logger.warning("Dirichlet partitions of at least \(minSize) examples are out of reach for \(clients) clients at α \(alpha) in 100 draws: lowering the minimum to \(fit)")
                parts = try CIFARLoader.partition(labels: train.labels, numPartitions: clients,
                                                  scheme: .dirichlet(alpha: alpha, minPartitionSize: fit), seed: seed)
            }
            flat.reserveCapacity(min(n, clients.multipliedReportingOverflow(by: cap).overflow ? n : clients * cap))
            for p in parts {
                for j in p.prefix(cap) { flat.append(Int32(j)) }
                offsets.append(flat.count)
            }
        }
        // Keep only the examples some client uses (--max-train-examples may leave most unused).
        var position = [Int32](repeating: -1, count: n)
        for j in flat { position[Int(j)] = 0 }
        var kept: [Int] = []
        for j in 0 ..< n where position[j] == 0 {
            position[j] = Int32(kept.count)
            kept.append(j)
        }
        if kept.count == n { return VirtualPartitions(data: train, indices: flat, offsets: offsets) }
        for k in flat.indices { flat[k] = position[Int(flat[k])] }
        return VirtualPartitions(data: train.subset(kept), indices: flat, offsets: offsets)
    }
}

/// How a virtual federation reports a round's training progress.
public enum ProgressDisplay: Sendable {
    /// A log line at every tenth of the round's sampled clients (files, pipes, tests).
    case log
    /// A bar redrawn in place through `write` (a terminal): clients done / sampled, time, ETA.
    case bar(write: @Sendable (String) -> Void)

    /// Whether standard error is a terminal that can redraw a line (not TERM=dumb).
    public static var standardErrorIsTerminal: Bool {
        isatty(STDERR_FILENO) == 1 && ProcessInfo.processInfo.environment["TERM"] != "dumb"
    }

    /// A bar on standard error.
    public static var standardErrorBar: ProgressDisplay {
        .bar { text in FileHandle.standardError.write(Data(text.utf8)) }
    }
}

/// One redraw of the progress bar: carriage return, the line, then clear to the end of the line.
public func progressBarLine(round: Int, of rounds: Int, done: Int, sampled: Int, elapsed: Double, width: Int = 30) -> String {
    let filled = sampled > 0 ? min(width, done * width / sampled) : width
    let eta = done > 0 ? String(format: "ETA %.1f s", elapsed / Double(done) * Double(sampled - done)) : "ETA -"
    return "\r" + String(format: "round %d/%d [", round, rounds) + String(repeating: "#", count: filled)
        + String(repeating: ".", count: width - filled)
        + String(format: "] %d/%d clients, %.1f s, ", done, sampled, elapsed) + eta + "\u{1B}[K"
}

/// What a sampled virtual client needs to become a full client for one call: the shared data,
/// the model pool and the settings every client shares. Built once; clients refer to it.
public final class VirtualFederation: Sendable {
    /// Every client's data.
    public let partitions: VirtualPartitions
    let pool: ModelPool
    let defaults: TrainingDefaults
    let logger: Logger
    /// Clients 0..<malicious run `attack`.
    let malicious: Int
    let attack: AttackSettings?
    /// Record-level DP-SGD on every client, each charged to its own ledger under `out/privacy`.
    let dpSGD: DPSGDOptions?
    let out: String
    let metrics: ClientMetrics
    let progress: Mutex<RoundProgress>
    /// Log lines or a terminal bar.
    let display: ProgressDisplay

    /// A federation over `partitions`, training with models from `pool`.
    public init(partitions: VirtualPartitions, pool: ModelPool, defaults: TrainingDefaults, logger: Logger,
                malicious: Int = 0, attack: AttackSettings? = nil, dpSGD: DPSGDOptions? = nil, out: String,
                display: ProgressDisplay = .log) {
        self.partitions = partitions; self.pool = pool; self.defaults = defaults; self.logger = logger
        self.display = display
        self.malicious = malicious; self.attack = attack; self.dpSGD = dpSGD; self.out = out
        metrics = ClientMetrics(factory: FlwrMetricsFactory())
        progress = Mutex(RoundProgress())
    }

    /// Number of clients.
    public var count: Int { partitions.clients }

    /// The idle handle of client `i` (what the client manager holds).
    public func proxy(_ i: Int) -> VirtualClientProxy { VirtualClientProxy(index: i, federation: self) }

    /// Client `i` as the TCP simulation builds it — its partition (label-flipped when it is an
    /// attacker), its DP-SGD ledger, its attack — made now, for one call, and dropped after it.
    public func client(_ i: Int) throws -> any Client {
        let ledger = (out as NSString).appendingPathComponent("privacy/partition-\(i)")
        let attack = i < malicious ? self.attack : nil
        let train = LocalData(dataset: AttackPlan.trainingData(partitions.dataset(of: i), settings: attack))
        let site = try dpSGD.map { try DPSGDSite(options: $0, ledgerDirectory: ledger) }
        // No local evaluation data: `flwr simulate` evaluates centrally whenever it has a test set,
        // and without one the TCP clients have none either.
        let honest = ModelClient(partition: i, train: train, eval: nil, pool: pool, defaults: defaults, logger: logger,
                                 dpSGD: site)
        return InstrumentedClient(AttackPlan.wrap(honest, settings: attack, partition: i), defaultEpochs: defaults.epochs,
                                  epsilon: nil, metrics: metrics)
    }

    /// Progress of the current round's fits, for the log.
    struct RoundProgress {
        var round = 0, rounds = 0, sampled = 0, done = 0, reported = 0
        var started = ContinuousClock.now
        /// A bar is on screen without its closing newline.
        var barOpen = false
    }

    /// A round's fit phase starts on `sampled` clients (the bar, on a terminal, is drawn empty).
    func roundStarted(_ round: Int, of rounds: Int = 0, sampled: Int) {
        let text: String? = progress.withLock { p in
            p = RoundProgress(round: round, rounds: rounds, sampled: sampled, done: 0, reported: 0, started: .now)
            guard case .bar = display else { return nil }
            p.barOpen = true
            return progressBarLine(round: round, of: rounds, done: 0, sampled: sampled, elapsed: 0)
        }
        if let text, case .bar(let write) = display { write(text) }
    }

    /// The round's fit phase ended: a bar still open (clients lost to the timeout) is closed.
    func fitPhaseEnded(round: Int) {
        let close: Bool = progress.withLock { p in
            guard p.round == round, p.barOpen else { return false }
            p.barOpen = false
            return true
        }
        if close, case .bar(let write) = display { write("\n") }
    }

    /// One sampled client of `round` finished its fit (with an answer or an error); logs every
    /// tenth of the round's clients with the time so far and the estimated time left.
    func fitFinished(round: Int) {
        if case .bar(let write) = display {
            let text: String? = progress.withLock { p in
                guard p.round == round, p.sampled > 0, p.barOpen else { return nil }
                p.done += 1
                let line = progressBarLine(round: round, of: p.rounds, done: p.done, sampled: p.sampled,
                                           elapsed: (ContinuousClock.now - p.started).seconds)
                if p.done >= p.sampled { p.barOpen = false; return line + "\n" }
                return line
            }
            if let text { write(text) }
            return
        }
        let line: String? = progress.withLock { p in
            guard p.round == round, p.sampled > 0 else { return nil }
            p.done += 1
            let tenth = p.done * 10 / p.sampled
            guard tenth > p.reported else { return nil }
            p.reported = tenth
            let elapsed = (ContinuousClock.now - p.started).seconds
            let eta = elapsed / Double(p.done) * Double(p.sampled - p.done)
            return String(format: "round %d: %d/%d sampled clients trained, %.1f s elapsed, about %.1f s left",
                          round, p.done, p.sampled, elapsed, eta)
        }
        if let line { logger.info("\(line)") }
    }
}

/// Feeds the round starts to the virtual federation's progress log.
struct VirtualProgressObserver: ServerObserver {
    let federation: VirtualFederation
    func roundStarted(round: Int, of numRounds: Int, sampled: Int) { federation.roundStarted(round, of: numRounds, sampled: sampled) }
    func fitFinished(round: Int, results: Int, failures: [ClientFailure]) { federation.fitPhaseEnded(round: round) }
}

/// An idle virtual client as the server sees it: an identity (the TCP client's, "partition-i")
/// and a reference to the shared federation. Each call builds the client, runs it and drops it.
public final class VirtualClientProxy: ClientProxy {
    public let id: String
    public let partition: Int?
    let federation: VirtualFederation
    /// The client's state during a SecAgg+ fit round (nil when idle).
    private let secAgg = Mutex<SecAggParticipant?>(nil)

    init(index: Int, federation: VirtualFederation) {
        id = "partition-\(index)"
        partition = index
        self.federation = federation
    }

    private var index: Int { partition ?? 0 }

    public func getParameters(_ ins: GetParametersIns, timeout: Duration) async throws -> ParametersRes {
        try await federation.client(index).getParameters(ins)
    }

    public func fit(_ ins: FitIns, timeout: Duration) async throws -> FitRes {
        defer { federation.fitFinished(round: ins.round) }
        return try await federation.client(index).fit(ins)
    }

    public func evaluate(_ ins: EvaluateIns, timeout: Duration) async throws -> EvaluateRes {
        try await federation.client(index).evaluate(ins)
    }

    /// A SecAgg+ fit round in process: the setup builds the client and its round state (as a TCP
    /// client's session holds them for its connection), the later steps go to that state, and the
    /// unmasking answer drops it again, so an idle virtual client still holds nothing.
    public func secureAggregation(_ ins: SecAggInstruction, timeout: Duration) async throws -> SecAggAnswer {
        let participant: SecAggParticipant
        if case .setup = ins {
            participant = SecAggParticipant(client: try federation.client(index))
            secAgg.withLock { $0 = participant }
        } else if let current = secAgg.withLock({ $0 }) {
            participant = current
        } else {
            // No round set up for this client: refused without building the client and its data.
            throw SecAggError.unexpectedMessage(message: ins.name, state: "no secure-aggregation round was set up for this virtual client")
        }
        switch ins {
        case .forwardedShares(_, let fit):
            defer { federation.fitFinished(round: fit.round) }
            return try await participant.handle(ins)
        case .unmaskRequest:
            defer { secAgg.withLock { $0 = nil } }
            return try await participant.handle(ins)
        default:
            return try await participant.handle(ins)
        }
    }

    /// Nothing to end: an idle virtual client holds no connection, task or data.
    public func finish(roundsCompleted: Int, reason: String) async {}

    /// False: the server need not spend a task telling a virtual client that training is over.
    public var needsFinish: Bool { false }

    /// Nothing to do: a virtual client is always available, so it never needs to come back later.
    public func reconnect(seconds: Int, reason: String) async {}
}

/// The resident memory of this process now, in megabytes (Linux /proc/self/statm; nil elsewhere).
public func residentMegabytes() -> Double? {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return nil }
    let fields = text.split(separator: " ")
    guard fields.count > 1, let pages = Double(fields[1]) else { return nil }
    return pages * Double(sysconf(Int32(_SC_PAGESIZE))) / 1_048_576
}
