import Foundation

/// The server's state after a completed round: enough to resume at the next round with nothing lost.
///
/// File format (version 2, or 3 with FedBuff's state), all integers little-endian:
/// ```
/// 0      8 bytes   magic "FLWRCKPT"
/// 8      u32       format version (2; 3 when the header has "fedbuff")
/// 12     u32       H: header length in bytes
/// 16     H bytes   JSON header: {"round", "seed", "strategy", "layout": [{"name","shape","offset"}], "history",
///                  "state_tensors": [{"name", "count"}], "state_scalars": {name: double},
///                  "fedbuff": {"dispatches", "in_flight": [{"client", "version", "arrival", "sequence"}],
///                              "versions": [int]}}   (version 3 only)
/// 16+H   u64       N: number of float32 values
/// 24+H   N × 4     the flat parameter buffer, float32 little-endian, in layout order
/// 24+H+4N S × 4    the strategy's state buffers (server optimiser moments), float32 little-endian,
///                  back to back in `state_tensors` order (S = Σ count)
/// …      V × N × 4 version 3: the models of the older versions clients in flight train on, in
///                  `fedbuff.versions` order, each laid out like the parameters (V = that count)
/// ```
/// The file is exactly `24 + H + 4N + 4S + 4VN` bytes and is written atomically (temporary file +
/// rename). Version 1 files (no state) are still read, with an empty state; version 2 files (no
/// FedBuff state) are read with `fedBuff` nil. A checkpoint without FedBuff state is written as
/// version 2, so builds that predate version 3 still read every synchronous checkpoint.
public struct Checkpoint: Sendable, Equatable {
    /// The last completed round; a resumed run starts at `round + 1`.
    public var round: Int
    /// The global model after `round`.
    public var parameters: Parameters
    /// Records of rounds 1...`round`.
    public var history: History
    /// The strategy's seed (its sampling is derived from seed and round number).
    public var seed: UInt64
    /// The strategy's name, checked on resume.
    public var strategy: String
    /// The strategy's server-side state after `round` (FedOpt moments, FedAvgM velocity).
    public var state: StrategyState
    /// `--mode async`: the clients in flight after update `round` and the sampler's position
    /// (nil: a synchronous run, or an asynchronous checkpoint written before this was kept).
    public var fedBuff: FedBuffCheckpoint?

    /// A checkpoint of the given state.
    public init(round: Int, parameters: Parameters, history: History, seed: UInt64, strategy: String,
                state: StrategyState = StrategyState(), fedBuff: FedBuffCheckpoint? = nil) {
        self.round = round
        self.parameters = parameters
        self.history = history
        self.seed = seed
        self.strategy = strategy
        self.state = state
        self.fedBuff = fedBuff
    }

    static let magic = Array("FLWRCKPT".utf8)
    static let formatVersion: UInt32 = 3
    /// The version written when there is no FedBuff state.
    static let synchronousFormatVersion: UInt32 = 2

    private struct FedBuffHeader: Codable {
        var dispatches: Int
        var in_flight: [FedBuffCheckpoint.Dispatch]
        var versions: [Int]
    }

    private struct StateTensor: Codable {
        var name: String
        var count: Int
    }

    private struct Header: Codable {
        var round: Int
        var seed: UInt64
        var strategy: String
        var layout: [TensorSpec]
        var history: History
        var state_tensors: [StateTensor]?
        var state_scalars: [String: Double]?
        var fedbuff: FedBuffHeader?
    }

    /// The checkpoint's bytes in the format above.
    public func encoded() throws(CheckpointError) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        let header: Data
        do {
            header = try encoder.encode(Header(round: round, seed: seed, strategy: strategy,
                                               layout: parameters.layout, history: history,
                                               state_tensors: stateNames.map { StateTensor(name: $0, count: state.tensors[$0]?.count ?? 0) },
                                               state_scalars: state.scalars,
                                               fedbuff: fedBuff.map {
                                                   FedBuffHeader(dispatches: $0.dispatches, in_flight: $0.inFlight,
                                                                 versions: $0.versions.keys.sorted())
                                               }))
        } catch {
            throw CheckpointError.malformed(path: "<memory>", detail: "header does not encode: \(error)")
        }
        if let fedBuff {
            for (v, values) in fedBuff.versions where values.count != parameters.count {
                throw CheckpointError.malformed(path: "<memory>", detail: "FedBuff version \(v) holds \(values.count) values, the model \(parameters.count)")
            }
        }
        var out: [UInt8] = []
        out.reserveCapacity(24 + header.count + 4 * parameters.count * (1 + (fedBuff?.versions.count ?? 0)))
        out += Self.magic
        Self.append(fedBuff == nil ? Self.synchronousFormatVersion : Self.formatVersion, to: &out)
        Self.append(UInt32(header.count), to: &out)
        out += header
        Self.append(UInt64(parameters.count), to: &out)
        for v in parameters.values { Self.append(v.bitPattern, to: &out) }
        for name in stateNames {
            for v in state.tensors[name] ?? [] { Self.append(v.bitPattern, to: &out) }
        }
        if let fedBuff {
            for version in fedBuff.versions.keys.sorted() {
                for v in fedBuff.versions[version]! { Self.append(v.bitPattern, to: &out) }
            }
        }
        return out
    }

    /// State buffer names in a stable (sorted) order.
    private var stateNames: [String] { state.tensors.keys.sorted() }

    /// Parses checkpoint bytes; `path` only names the source in errors.
    public static func decode(_ bytes: [UInt8], path: String = "<memory>") throws(CheckpointError) -> Checkpoint {
        guard bytes.count >= 24, Array(bytes[0 ..< 8]) == magic else {
            throw .malformed(path: path, detail: "not a flwr checkpoint (no FLWRCKPT magic)")
        }
        let version: UInt32 = read(bytes, at: 8)
        guard (1 ... formatVersion).contains(version) else {
            throw .malformed(path: path, detail: "format version \(version), this build reads 1 to \(formatVersion)")
        }
        let h = Int(read(bytes, at: 12) as UInt32)
        guard 24 + h <= bytes.count else { throw .malformed(path: path, detail: "truncated header") }
        let n: UInt64 = read(bytes, at: 16 + h)
        guard n <= UInt64(bytes.count), 24 + h + 4 * Int(n) <= bytes.count else {
            throw .malformed(path: path, detail: "file is \(bytes.count) bytes, expected at least \(24 + h) + 4 × \(n)")
        }
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        let header: Header
        do {
            header = try decoder.decode(Header.self, from: Data(bytes[16 ..< 16 + h]))
        } catch {
            throw .malformed(path: path, detail: "header JSON: \(error)")
        }
        let stateSpecs = header.state_tensors ?? []
        var stateCount = 0
        for t in stateSpecs {
            guard t.count >= 0, t.count <= bytes.count else {
                throw .malformed(path: path, detail: "state tensor \(t.name) has count \(t.count)")
            }
            stateCount += t.count
        }
        if header.fedbuff != nil && version < 3 {
            throw .malformed(path: path, detail: "FedBuff state in a format version \(version) file")
        }
        let olderVersions = header.fedbuff?.versions ?? []
        guard olderVersions.count <= (n == 0 ? bytes.count : bytes.count / (4 * Int(n))),
              bytes.count == 24 + h + 4 * Int(n) * (1 + olderVersions.count) + 4 * stateCount else {
            throw .malformed(path: path, detail: "file is \(bytes.count) bytes, expected \(24 + h) + 4 × \(n) × \(1 + olderVersions.count) + 4 × \(stateCount)")
        }
        var values = [Float](repeating: 0, count: Int(n))
        let base = 24 + h
        for i in 0 ..< values.count { values[i] = Float(bitPattern: read(bytes, at: base + 4 * i)) }
        let parameters: Parameters
        do {
            parameters = try Parameters(shapes: header.layout.map { ($0.name, $0.shape) }, values: values)
        } catch {
            throw .malformed(path: path, detail: "layout: \(error)")
        }
        guard parameters.layout == header.layout else {
            throw .malformed(path: path, detail: "layout offsets are not contiguous")
        }
        guard header.history.lastRound == header.round else {
            throw .malformed(path: path, detail: "history ends at round \(header.history.lastRound) but the checkpoint is of round \(header.round)")
        }
        var state = StrategyState(scalars: header.state_scalars ?? [:])
        var offset = base + 4 * Int(n)
        for t in stateSpecs {
            guard state.tensors[t.name] == nil else {
                throw .malformed(path: path, detail: "state tensor \(t.name) appears twice")
            }
            var buffer = [Float](repeating: 0, count: t.count)
            for i in 0 ..< t.count { buffer[i] = Float(bitPattern: read(bytes, at: offset + 4 * i)) }
            offset += 4 * t.count
            state.tensors[t.name] = buffer
        }
        var fedBuff: FedBuffCheckpoint?
        if let f = header.fedbuff {
            var versions: [Int: [Float]] = [:]
            for v in f.versions {
                guard v >= 0, v < header.round, versions[v] == nil else {
                    throw .malformed(path: path, detail: "FedBuff version \(v) is not an older version of update \(header.round), or appears twice")
                }
                var buffer = [Float](repeating: 0, count: Int(n))
                for i in 0 ..< buffer.count { buffer[i] = Float(bitPattern: read(bytes, at: offset + 4 * i)) }
                offset += 4 * Int(n)
                versions[v] = buffer
            }
            let state = FedBuffCheckpoint(dispatches: f.dispatches, inFlight: f.in_flight, versions: versions)
            if let why = state.problem(round: header.round) { throw .malformed(path: path, detail: why) }
            fedBuff = state
        }
        return Checkpoint(round: header.round, parameters: parameters, history: header.history,
                          seed: header.seed, strategy: header.strategy, state: state, fedBuff: fedBuff)
    }

    /// Writes the checkpoint to `path` atomically.
    public func write(to path: String) throws(CheckpointError) {
        do {
            try AtomicFile.write(try encoded(), to: path)
        } catch let e as FileError {
            throw .file(e)
        } catch let e as CheckpointError {
            throw e
        } catch {
            throw .malformed(path: path, detail: "\(error)")
        }
    }

    /// Reads the checkpoint at `path`.
    public static func read(from path: String) throws(CheckpointError) -> Checkpoint {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw .missing(path: path)
        }
        return try decode(Array(data), path: path)
    }

    private static func append<T: FixedWidthInteger>(_ x: T, to out: inout [UInt8]) {
        withUnsafeBytes(of: x.littleEndian) { out += $0 }
    }

    private static func read<T: FixedWidthInteger>(_ bytes: [UInt8], at offset: Int) -> T {
        var x: T = 0
        for k in 0 ..< MemoryLayout<T>.size { x |= T(bytes[offset + k]) << (8 * k) }
        return x
    }
}

/// FedBuff's state after a server update, beyond the model (`--mode async` checkpoints). The buffer
/// is empty then (an update consumes it), so what a resumed run needs is who was training on which
/// version, when each result is due on the virtual clock, and how far the sampler has drawn.
public struct FedBuffCheckpoint: Sendable, Equatable {
    /// A client in flight: trained on `version`, its result due at virtual time `arrival` (nil on
    /// the real clock), the `sequence`-th client started in the run (its tie-break and draw).
    public struct Dispatch: Sendable, Equatable, Codable {
        public var client: String
        public var version: Int
        public var arrival: Double?
        public var sequence: Int

        public init(client: String, version: Int, arrival: Double?, sequence: Int) {
            self.client = client
            self.version = version
            self.arrival = arrival
            self.sequence = sequence
        }
    }

    /// Clients started since the run began: the next client is drawn from stream `dispatches`.
    public var dispatches: Int
    /// The clients training when the checkpoint was written, in start order.
    public var inFlight: [Dispatch]
    /// The models of the versions older than the checkpoint's that clients in flight train on.
    public var versions: [Int: [Float]]

    public init(dispatches: Int, inFlight: [Dispatch], versions: [Int: [Float]]) {
        self.dispatches = dispatches
        self.inFlight = inFlight
        self.versions = versions
    }

    /// The most client starts a checkpoint may record (2^53: far beyond any run, far below overflow).
    static let maxDispatches = 1 << 53

    /// Why this state cannot follow update `round`, or nil.
    func problem(round: Int) -> String? {
        if dispatches < 0 { return "FedBuff dispatch count \(dispatches) is negative" }
        // The resumed run counts on from here: a count near Int.max would overflow at its next start.
        if dispatches > Self.maxDispatches { return "FedBuff dispatch count \(dispatches) is above \(Self.maxDispatches)" }
        if Set(inFlight.map(\.client)).count != inFlight.count { return "a client is in flight twice in the FedBuff state" }
        for d in inFlight {
            if d.sequence < 0 || d.sequence >= dispatches {
                return "FedBuff client \(d.client) has start number \(d.sequence), outside 0..<\(dispatches)"
            }
            if d.version > round || (d.version < round && versions[d.version] == nil) {
                return "FedBuff client \(d.client) trains on version \(d.version), which update \(round)'s checkpoint does not hold"
            }
            if let a = d.arrival, !a.isFinite { return "FedBuff client \(d.client) has arrival time \(a)" }
        }
        return nil
    }
}

/// Checkpoint problems, each with what to do.
public enum CheckpointError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No file at the path.
    case missing(path: String)
    /// The bytes are not a valid checkpoint of this format version.
    case malformed(path: String, detail: String)
    /// Writing failed.
    case file(FileError)

    public var description: String {
        switch self {
        case .missing(let p):
            return "no checkpoint at \(p); run without --resume to start from round 1, or point --checkpoint-dir at the previous run"
        case .malformed(let p, let d):
            return "checkpoint \(p) is unusable: \(d); delete it to start over or restore a good copy"
        case .file(let e):
            return "checkpoint not written: \(e)"
        }
    }
}
