// `flwr bench wire`: FlowerWire encode+decode throughput and loopback FitIns/FitRes round trips.
import ArgumentParser
import FlowerCore
import FlowerTLS
import FlowerWire
import Foundation
import Logging
import NIOCore
import Synchronization

/// Benchmarks the FlowerWire protocol; prints JSON lines (see BENCHMARKS.md, "Wire").
struct BenchWire: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wire",
        abstract: "Measure FlowerWire encode+decode throughput and loopback FitIns/FitRes round trips.",
        discussion: """
            For each model size, with compression off and on: encode+decode of a FitIns frame \
            (MB/s of float32 parameters), then FitIns→FitRes over loopback TCP (ms). With --tls, \
            also the uncompressed round trip inside mutual TLS 1.3 (certificates from `flwr certs` \
            in a temporary folder) and its cost against the plain one. Ends with the process's \
            peak resident memory. Build with -c release.
            """
    )

    @Option(name: .long, parsing: .upToNextOption, help: "Model sizes in parameters (390410 is the reference CNN).")
    var params: [Int] = [390_410, 10_000_000]

    @Option(name: .long, help: "Loopback round trips per configuration (the median is reported).")
    var roundTrips: Int = 20

    @Option(name: .long, help: "Seed for the parameter values.")
    var seed: UInt64 = 42

    @Flag(name: .long, help: "Also measure the uncompressed round trip inside mutual TLS 1.3, beside the plain one.")
    var tls = false

    func validate() throws {
        guard params.allSatisfy({ $0 > 0 && $0 <= 60_000_000 }) else {
            throw ValidationError("--params must be between 1 and 60000000 (frames are limited to 256 MiB)")
        }
        guard roundTrips > 0 else { throw ValidationError("--round-trips must be at least 1") }
    }

    func run() async throws {
        WireMemory.retainLargeBuffers(upTo: 512 << 20)  // what WireServer/WireClient do at start
        let certs = FileManager.default.temporaryDirectory.appendingPathComponent("flwr-bench-tls-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: certs) }
        var security: (server: TLSServerSecurity, client: TLSClientSecurity)?
        if tls {
            try FederationCertificates.write(to: certs, serverNames: ["127.0.0.1"], clients: 1)
            security = (try TLSServerSecurity(certificatePath: "\(certs)/server.pem", keyPath: "\(certs)/server.key",
                                              clientCAPath: "\(certs)/ca.pem"),
                        try TLSClientSecurity(caPath: "\(certs)/ca.pem", serverName: "127.0.0.1",
                                              certificatePath: "\(certs)/client-0.pem", keyPath: "\(certs)/client-0.key"))
        }
        for n in params {
            let model = try benchModel(parameters: n, seed: seed)
            for compressed in [false, true] {
                print(json(try codec(model, compressed: compressed)))
                let plain = try await loopback(model, compressed: compressed)
                print(json(plain))
                if let security, !compressed {
                    var secured = try await loopback(model, compressed: false, security: security)
                    if let p = plain["roundtrip_ms_median"] as? Double, let t = secured["roundtrip_ms_median"] as? Double {
                        secured["tls_cost_vs_plain"] = t / p - 1
                    }
                    print(json(secured))
                }
            }
        }
        print(json(["bench": "wire", "peak_rss_mb": peakRSSMegabytes()]))
    }

    /// Encode+decode of one FitIns frame, repeated for about half a second.
    func codec(_ model: Parameters, compressed: Bool) throws -> [String: Any] {
        let ins = FitIns(round: 1, parameters: model, config: ["lr": .double(0.01)])
        let bytes = Double(model.count * 4)
        let iterations = compressed ? max(2, Int(60e6 / bytes)) : max(5, Int(2e9 / bytes))
        // The transport's path: protobuf-c packs into the ByteBuffer that is written to the
        // channels; the receiver decodes from its receive buffer (a slice, no copy).
        var frame = try WireEncoder.frameBuffer(.fit(ins), compression: compressed)  // warm-up
        var encode = 0.0, decode = 0.0
        for _ in 0 ..< iterations {
            let t0 = Date()
            frame = try WireEncoder.frameBuffer(.fit(ins), compression: compressed)
            encode += Date().timeIntervalSince(t0)
            guard let received = try ReceivedFrame.parse(frame, limit: 256 << 20) else {
                throw ValidationError("encoded frame does not parse as one frame")
            }
            let t1 = Date()
            guard case .fit(let back) = try received.serverMessage(limit: 256 << 20), back.parameters.count == model.count else {
                throw ValidationError("decoded FitIns does not match what was encoded")
            }
            decode += Date().timeIntervalSince(t1)
        }
        let e = encode / Double(iterations), d = decode / Double(iterations)
        return ["bench": "wire", "mode": "codec", "params": model.count, "compressed": compressed,
                "frame_bytes": frame.readableBytes, "frame_compressed": frame.getInteger(at: frame.readerIndex, as: UInt8.self) == 1,
                "encode_ms": e * 1e3, "decode_ms": d * 1e3,
                "encode_mb_per_s": bytes / e / 1e6, "decode_mb_per_s": bytes / d / 1e6,
                "encode_decode_mb_per_s": bytes / (e + d) / 1e6, "iterations": iterations]
    }

    /// FitIns → FitRes over loopback TCP with an echo client; median of `roundTrips`.
    func loopback(_ model: Parameters, compressed: Bool,
                  security: (server: TLSServerSecurity, client: TLSClientSecurity)? = nil) async throws -> [String: Any] {
        var logger = Logger(label: "flwr.bench.wire")
        logger.logLevel = .error
        let manager = BenchManager()
        var serverConfig = WireServerConfig(host: "127.0.0.1", port: 0, compressionAllowed: compressed)
        serverConfig.security = security?.server
        let server = WireServer(config: serverConfig, manager: manager, logger: logger)
        let port = try await server.start()
        // Under mutual TLS the identity is the certificate's (client-0 → partition-0).
        var config = WireClientConfig(host: "127.0.0.1", port: port, clientID: security == nil ? "bench" : "partition-0")
        config.security = security?.client
        config.acceptCompression = compressed
        let clientConfig = config
        let clientLogger = logger
        let client = Task { try await WireClient.run(config: clientConfig, client: EchoClient(), logger: clientLogger) }
        while manager.proxy == nil { try await Task.sleep(for: .milliseconds(2)) }
        guard let proxy = manager.proxy else { throw ValidationError("bench client did not register") }
        var times: [Double] = []
        for round in 0 ... roundTrips {
            let t0 = Date()
            let res = try await proxy.fit(FitIns(round: round + 1, parameters: model), timeout: .seconds(120))
            if round > 0 { times.append(Date().timeIntervalSince(t0) * 1e3) }  // round 0 warms up
            guard res.parameters.count == model.count else { throw ValidationError("FitRes lost parameters") }
        }
        let bytes = (server.bytesIn, server.bytesOut)
        await proxy.finish(roundsCompleted: roundTrips, reason: "bench done")
        _ = try? await client.value
        await server.stop()
        times.sort()
        return ["bench": "wire", "mode": "roundtrip", "params": model.count, "compressed": compressed, "tls": security != nil,
                "roundtrip_ms_median": times[times.count / 2], "roundtrip_ms_min": times[0],
                "bytes_in": bytes.0, "bytes_out": bytes.1, "round_trips": roundTrips]
    }
}

/// The reference CNN's layout for 390,410 parameters (1×28×28 input, 10 classes); other sizes
/// are split into tensors of at most 1M elements. Values ~ N(0, 0.05) like trained weights.
func benchModel(parameters n: Int, seed: UInt64) throws -> Parameters {
    var shapes: [(name: String, shape: [Int])]
    if n == 390_410 {
        shapes = [("conv1.weight", [32, 1, 3, 3]), ("conv1.bias", [32]), ("conv2.weight", [64, 32, 3, 3]), ("conv2.bias", [64]),
                  ("conv3.weight", [128, 64, 3, 3]), ("conv3.bias", [128]), ("conv4.weight", [256, 128, 3, 3]), ("conv4.bias", [256]),
                  ("fc.weight", [10, 256]), ("fc.bias", [10])]
    } else {
        shapes = stride(from: 0, to: n, by: 1 << 20).enumerated().map { ("layer\($0.offset).weight", [min(1 << 20, n - $0.element)]) }
    }
    var state = seed
    func next() -> Double {  // SplitMix64 → uniform (0, 1)
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return (Double((z ^ (z >> 31)) >> 11) + 0.5) / Double(1 << 53)
    }
    let values = [Float](unsafeUninitializedCapacity: n) { buf, count in
        for i in 0 ..< n { buf[i] = Float(sqrt(-2 * log(next())) * cos(2 * Double.pi * next()) * 0.05) }
        count = n
    }
    return try Parameters(shapes: shapes, values: values)
}

/// A client that returns the parameters it was sent: the round trip measures only the wire.
private struct EchoClient: Client {
    func getParameters(_ ins: GetParametersIns) async throws -> ParametersRes { ParametersRes(parameters: Parameters()) }
    func fit(_ ins: FitIns) async throws -> FitRes { FitRes(round: ins.round, parameters: ins.parameters, numExamples: 1) }
    func evaluate(_ ins: EvaluateIns) async throws -> EvaluateRes { EvaluateRes(round: ins.round, loss: 0, numExamples: 1) }
}

/// Holds the single bench client.
private final class BenchManager: ClientManager, Sendable {
    private let client = Mutex<(any ClientProxy)?>(nil)
    var proxy: (any ClientProxy)? { client.withLock { $0 } }
    func register(_ c: any ClientProxy) -> Result<Void, RegistrationRefusal> { client.withLock { $0 = c }; return .success(()) }
    func unregister(id: String) { client.withLock { if $0?.id == id { $0 = nil } } }
    func unregister(_ c: any ClientProxy) { client.withLock { if $0 === c { $0 = nil } } }
    func replace(with c: any ClientProxy) -> (any ClientProxy)? { client.withLock { old in defer { old = c }; return old } }
    var count: Int { client.withLock { $0 == nil ? 0 : 1 } }
}

/// Peak resident set size of this process in MB (getrusage ru_maxrss is in KiB on Linux).
func peakRSSMegabytes() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_maxrss) / 1024
}

/// One JSON object per line, keys sorted so lines diff cleanly.
func json(_ object: [String: Any]) -> String {
    guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return "{}" }
    return String(decoding: data, as: UTF8.self)
}
