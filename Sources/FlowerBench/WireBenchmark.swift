// The wire's benchmark (`flwr bench wire`): FlowerWire encode+decode throughput of a FitIns
// frame and FitIns→FitRes round trips over loopback TCP, plain and inside mutual TLS 1.3.
import CNNModel
import FlowerCore
import FlowerLearning
import FlowerRuntime
import FlowerTLS
import FlowerWire
import Foundation
import Logging
import NIOCore

/// What `WireBenchmark` measures.
public struct WireBenchmarkConfig: Sendable {
    /// Model sizes in parameters; the reference CNN's size gets its real layout.
    public var params = [390_410, 10_000_000]
    /// Loopback round trips per configuration (the median is reported).
    public var roundTrips = 20
    public var seed: UInt64 = 42
    /// Also the uncompressed round trip inside mutual TLS 1.3.
    public var tls = false

    public init() {}
}

/// Benchmarks the FlowerWire protocol; one JSON line per figure (BENCHMARKS.md, "Wire").
public struct WireBenchmark {
    public let config: WireBenchmarkConfig
    let emit: (String) -> Void

    public init(config: WireBenchmarkConfig, emit: @escaping (String) -> Void = { print($0) }) {
        self.config = config
        self.emit = emit
    }

    /// Runs every figure, one JSON line each through `emit`.
    public func run() async throws {
        WireMemory.retainLargeBuffers(upTo: 512 << 20)  // what WireServer/WireClient do at start
        let certs = FileManager.default.temporaryDirectory.appendingPathComponent("flwr-bench-tls-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: certs) }
        var security: (server: TLSServerSecurity, client: TLSClientSecurity)?
        if config.tls {
            try FederationCertificates.write(to: certs, serverNames: ["127.0.0.1"], clients: 1)
            security = (try TLSServerSecurity(certificatePath: "\(certs)/server.pem", keyPath: "\(certs)/server.key",
                                              clientCAPath: "\(certs)/ca.pem"),
                        try TLSClientSecurity(caPath: "\(certs)/ca.pem", serverName: "127.0.0.1",
                                              certificatePath: "\(certs)/client-0.pem", keyPath: "\(certs)/client-0.key"))
        }
        for n in config.params {
            let model = try benchModel(parameters: n, seed: config.seed)
            for compressed in [false, true] {
                emit(JSONLines.line(try codec(model, compressed: compressed)))
                let plain = try await loopback(model, compressed: compressed)
                emit(JSONLines.line(plain))
                if let security, !compressed {
                    var secured = try await loopback(model, compressed: false, security: security)
                    if let p = plain["roundtrip_ms_median"] as? Double, let t = secured["roundtrip_ms_median"] as? Double {
                        secured["tls_cost_vs_plain"] = t / p - 1
                    }
                    emit(JSONLines.line(secured))
                }
            }
        }
        emit(JSONLines.line(["bench": "wire", "peak_rss_mb": peakRSSMegabytes()]))
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
                throw BenchError("encoded frame does not parse as one frame")
            }
            let t1 = Date()
            guard case .fit(let back) = try received.serverMessage(limit: 256 << 20), back.parameters.count == model.count else {
                throw BenchError("decoded FitIns does not match what was encoded")
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
        let manager = InMemoryClientManager()
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
        // Woken by the client's registration.
        guard await manager.waitFor(count: 1, timeout: .seconds(60)), let proxy = manager.all().first else {
            throw BenchError("bench client did not register within 60 s")
        }
        var times: [Double] = []
        for round in 0 ... self.config.roundTrips {
            let t0 = Date()
            let res = try await proxy.fit(FitIns(round: round + 1, parameters: model), timeout: .seconds(120))
            if round > 0 { times.append(Date().timeIntervalSince(t0) * 1e3) }  // round 0 warms up
            guard res.parameters.count == model.count else { throw BenchError("FitRes lost parameters") }
        }
        let bytes = (server.bytesIn, server.bytesOut)
        await proxy.finish(roundsCompleted: self.config.roundTrips, reason: "bench done")
        _ = try? await client.value
        await server.stop()
        times.sort()
        return ["bench": "wire", "mode": "roundtrip", "params": model.count, "compressed": compressed, "tls": security != nil,
                "roundtrip_ms_median": times[times.count / 2], "roundtrip_ms_min": times[0],
                "bytes_in": bytes.0, "bytes_out": bytes.1, "round_trips": self.config.roundTrips]
    }
}

/// Parameters of `n` values ~ N(0, 0.05) like trained weights: the reference CNN's own layout
/// (cnn4 for 1×28×28 inputs and 10 classes) when `n` is its size, else tensors of at most 1M
/// elements.
func benchModel(parameters n: Int, seed: UInt64) throws -> Parameters {
    let reference = try ModelSelection(zoo: "cnn4").build(input: .image(channels: 1, height: 28, width: 28), classes: 10,
                                                          seed: seed, threads: 1).layout
    let shapes: [(name: String, shape: [Int])]
    if reference.reduce(0, { $0 + $1.shape.reduce(1, *) }) == n {
        shapes = reference.map { ($0.name, $0.shape) }
    } else {
        shapes = stride(from: 0, to: n, by: 1 << 20).enumerated().map { ("layer\($0.offset).weight", [min(1 << 20, n - $0.element)]) }
    }
    var g = SplitMix64(seed: seed)
    func next() -> Double { (Double(g.next() >> 11) + 0.5) / Double(1 << 53) }  // uniform (0, 1)
    let values = [Float](unsafeUninitializedCapacity: n) { buf, count in
        for i in 0 ..< n { buf[i] = Float(sqrt(-2 * log(next())) * cos(2 * Double.pi * next()) * 0.05) }
        count = n
    }
    return try Parameters(shapes: shapes, values: values)
}

/// A client that returns the parameters it was sent: the round trip measures only the wire.
struct EchoClient: Client {
    func getParameters(_ ins: GetParametersIns) async throws -> ParametersRes { ParametersRes(parameters: Parameters()) }
    func fit(_ ins: FitIns) async throws -> FitRes { FitRes(round: ins.round, parameters: ins.parameters, numExamples: 1) }
    func evaluate(_ ins: EvaluateIns) async throws -> EvaluateRes { EvaluateRes(round: ins.round, loss: 0, numExamples: 1) }
}
