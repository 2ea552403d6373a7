// A Flower-protocol peer nobody trusts, over a real HTTP/2 socket: FlowerCompatServer on
// loopback, and a raw grpc-swift client that sends whatever bytes the test scripts. Results the
// server cannot use fail that call only (the stream stays usable); protocol violations (wrong
// message order, unsolicited answers, undecodable bytes, no answer in time) end that stream and
// unregister the client; nothing crashes the server.
import FlowerCompat
import FlowerCore
import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import Synchronization
import TestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Sends and receives raw message bytes (the test decides what they hold).
struct RawBytes: MessageSerializer, MessageDeserializer {
    func serialize<Bytes: GRPCContiguousBytes>(_ message: [UInt8]) throws -> Bytes { Bytes(message) }
    func deserialize<Bytes: GRPCContiguousBytes>(_ bytes: Bytes) throws -> [UInt8] { bytes.withUnsafeBytes { Array($0) } }
}

/// The registry, remembering every client ever registered (a peer may be gone before the test
/// looks); waits wake on each registration or removal.
final class RecordingManager: ClientManager {
    let inner = InMemoryClientManager()
    let changes = ChangeSignal()
    private let seen = Mutex<[any ClientProxy]>([])
    var everRegistered: [any ClientProxy] { seen.withLock { $0 } }
    func register(_ client: any ClientProxy) -> Result<Void, RegistrationRefusal> {
        seen.withLock { $0.append(client) }
        defer { changes.changed() }
        return inner.register(client)
    }
    func unregister(id: String) {
        inner.unregister(id: id)
        changes.changed()
    }
    func unregister(_ client: any ClientProxy) {
        inner.unregister(client)
        changes.changed()
    }
    func replace(with client: any ClientProxy) -> (any ClientProxy)? {
        defer { changes.changed() }
        return inner.replace(with: client)
    }
    var count: Int { inner.count }
}

/// A started server, its registry, and a scripted peer.
struct Harness {
    let recorder = RecordingManager()
    var manager: InMemoryClientManager { recorder.inner }
    let server: FlowerCompatServer
    let port: Int

    init(reference: Parameters? = nil, slots: PayloadSlots? = nil) async throws {
        server = try FlowerCompatServer(config: FlowerCompatServerConfig(host: "127.0.0.1", port: 0, reference: reference,
                                                                         payloadSlots: slots),
                                        manager: recorder, logger: Logger(label: "test"))
        port = try await server.start()
    }

    /// Runs `body` with the proxy of one peer that answers each ServerMessage with `respond`'s
    /// bytes (and sends `initial` first).
    func withPeer(initial: [[UInt8]] = [], respond: @escaping @Sendable (FlowerServerMessage) -> [[UInt8]],
                  body: @escaping @Sendable (FlowerClientProxy) async throws -> Void) async throws {
        let transport = try HTTP2ClientTransport.Posix(target: .ipv4(address: "127.0.0.1", port: port), transportSecurity: .plaintext)
        try await withGRPCClient(transport: transport) { client in
            let (outbound, out) = AsyncStream.makeStream(of: [UInt8].self)
            for m in initial { out.yield(m) }
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    let request = StreamingClientRequest<[UInt8]> { w in for await m in outbound { try await w.write(m) } }
                    try? await client.bidirectionalStreaming(request: request, descriptor: FlowerService.join, serializer: RawBytes(),
                                                            deserializer: RawBytes(), options: .defaults) { response in
                        for try await bytes in response.messages {
                            guard case .success(let m) = bytes.withUnsafeBytes({ CompatCodec.decodeServerMessage($0) }) else { continue }
                            for reply in respond(m) { out.yield(reply) }
                        }
                    }
                    out.finish()
                }
                let recorder = recorder
                _ = await recorder.changes.wait(for: { !recorder.everRegistered.isEmpty }, timeout: .seconds(30))
                let proxy = recorder.everRegistered.first as? FlowerClientProxy
                #expect(proxy != nil, "the peer never registered")
                if let proxy { try await body(proxy) }
                out.finish()
                group.cancelAll()
            }
        }
    }

    /// Waits (at most 10 s) until the registry is empty: the server ended the peer's stream.
    func waitUntilUnregistered() async -> Bool {
        let manager = manager
        return await recorder.changes.wait(for: { manager.count == 0 }, timeout: .seconds(10))
    }
}

let reference = try! Parameters(shapes: [("w", [2, 3]), ("b", [3])], values: (0 ..< 9).map { Float($0) })

/// A FitRes carrying these tensors.
func fitRes(_ tensors: [[UInt8]], numExamples: Int64 = 10, type: String = FlowerTensors.numpyType) -> [UInt8] {
    (try? CompatCodec.encode(FlowerClientMessage.fitRes(status: .ok, parameters: FlowerTensors(tensors: tensors, tensorType: type),
                                                        numExamples: numExamples, metrics: ["loss": .double(0.5)]))) ?? []
}

func evaluateRes(loss: Float = 0.25) -> [UInt8] {
    (try? CompatCodec.encode(FlowerClientMessage.evaluateRes(status: .ok, loss: loss, numExamples: 4, metrics: ["accuracy": .double(0.75)]))) ?? []
}

/// The .npy bytes of `values` in `dtype` ('<f4', '<f8', '<i8') under a numpy header with `shape`.
func tensor(_ shape: [Int], _ values: [Double], dtype: String = "<f4", fortran: Bool = false) -> [UInt8] {
    let dims = shape.map(String.init).joined(separator: ", ") + (shape.count == 1 ? "," : "")
    let data: [UInt8]
    switch dtype {
    case "<f8": data = bytes(values)
    case "<i8": data = bytes(values.map { Int64($0) })
    default: data = bytes(values.map { Float($0) })
    }
    return npy("{'descr': '\(dtype)', 'fortran_order': \(fortran ? "True" : "False"), 'shape': (\(dims)), }", data: data)
}

@Suite(.serialized) struct HostilePeerTests {
    @Test func float32AndFloat64AnswersBecomeParametersWithTheInstructionsNames() async throws {
        let h = try await Harness()
        try await h.withPeer(respond: { m in
            guard case .fit(let p, let config) = m else { return [evaluateRes()] }
            // The instruction arrived as numpy .npy tensors with the round's config.
            #expect(p.tensors.count == 2 && p.tensorType == "numpy.ndarray" && config["lr"] == .double(0.1))
            return [fitRes([tensor([2, 3], [1, 2, 3, 4, 5, 6], dtype: "<f8"), tensor([3], [7, 8, 9])])]
        }) { proxy in
            let res = try await proxy.fit(FitIns(round: 1, parameters: reference, config: ["lr": .double(0.1)]), timeout: .seconds(30))
            #expect(res.parameters.layout.map(\.name) == ["w", "b"])
            #expect(res.parameters.values == [1, 2, 3, 4, 5, 6, 7, 8, 9])
            #expect(res.numExamples == 10)
            #expect(res.metrics["loss"] == .double(0.5))
            let eval = try await proxy.evaluate(EvaluateIns(round: 1, parameters: reference), timeout: .seconds(30))
            #expect(eval.loss == 0.25 && eval.numExamples == 4 && eval.metrics["accuracy"] == .double(0.75))
            // Traffic is counted for the round's bytes_in/bytes_out: the FitIns carried 9 floats
            // as two .npy tensors (each a 128-byte header + data), the answers likewise.
            #expect(proxy.bytesOut > 2 * 128 + 36 && proxy.bytesIn > 2 * 128 + 36, "out \(proxy.bytesOut), in \(proxy.bytesIn)")
        }
        await h.server.stop()
    }

    /// A round's FitIns is converted to numpy and encoded once, then the same bytes go to every
    /// client asked with it; a new round (or an EvaluateIns) is a new encoding.
    @Test func aRoundsInstructionIsEncodedOnce() async throws {
        let h = try await Harness()
        let seen = Mutex<[Int64]>([])
        try await h.withPeer(respond: { m in
            guard case .fit(let p, let config) = m else { return [evaluateRes()] }
            if case .int(let r)? = config["round"] { seen.withLock { $0.append(r) } }
            #expect(p.tensors.count == 2)
            return [fitRes([tensor([2, 3], [1, 2, 3, 4, 5, 6]), tensor([3], [7, 8, 9])])]
        }) { proxy in
            let first = FitIns(round: 1, parameters: reference, config: ["round": .int(1)])
            _ = try await proxy.fit(first, timeout: .seconds(30))
            _ = try await proxy.fit(first, timeout: .seconds(30))
            _ = try await proxy.fit(FitIns(round: 2, parameters: reference, config: ["round": .int(2)]), timeout: .seconds(30))
            _ = try await proxy.evaluate(EvaluateIns(round: 2, parameters: reference), timeout: .seconds(30))
        }
        #expect(seen.withLock { $0 } == [1, 1, 2], "each FitIns arrived with its own config")
        let stats = h.server.broadcastStats
        #expect(stats.built == 3 && stats.reused == 1, "built \(stats.built), reused \(stats.reused)")
        await h.server.stop()
    }

    static let unusable: [(String, [[UInt8]], String)] = [
        ("int64 tensor", [tensor([2, 3], [1, 2, 3, 4, 5, 6], dtype: "<i8"), tensor([3], [7, 8, 9])], "dtype '<i8' refused"),
        ("wrong shape", [tensor([3, 2], [1, 2, 3, 4, 5, 6]), tensor([3], [7, 8, 9])], "tensor #0 has shape [3, 2] where w [2, 3] was expected"),
        ("missing tensor", [tensor([2, 3], [1, 2, 3, 4, 5, 6])], "1 tensors where the model has 2"),
        ("Fortran order", [tensor([2, 3], [1, 2, 3, 4, 5, 6], fortran: true), tensor([3], [7, 8, 9])], "Fortran order"),
        ("truncated .npy", [Array(tensor([2, 3], [1, 2, 3, 4, 5, 6]).dropLast(5)), tensor([3], [7, 8, 9])], "truncated"),
        ("huge declared shape", [npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000000, 1000000000000), }", data: [0, 0, 0, 0]), tensor([3], [7, 8, 9])],
         "impossibly large"),
    ]

    /// Each answer decodes but cannot be used: the call fails with the reason, and the same stream
    /// then answers an EvaluateIns normally.
    @Test(arguments: unusable)
    func unusableResultsFailTheCallOnly(_ c: (String, [[UInt8]], String)) async throws {
        let (name, tensors, hint) = c
        let h = try await Harness()
        try await h.withPeer(respond: { m in
            if case .fit = m { return [fitRes(tensors)] }
            return [evaluateRes()]
        }) { proxy in
            do {
                _ = try await proxy.fit(FitIns(round: 1, parameters: reference), timeout: .seconds(30))
                Issue.record("\(name): accepted")
            } catch {
                #expect("\(error)".contains(hint), "\(name): \(error)")
            }
            let eval = try await proxy.evaluate(EvaluateIns(round: 1, parameters: reference), timeout: .seconds(30))
            #expect(eval.loss == 0.25, "\(name): the stream stays usable")
        }
        #expect(await h.waitUntilUnregistered(), "the peer left when its stream ended")
        await h.server.stop()
    }

    static let violations: [(String, [UInt8], String)] = [
        ("wrong kind of answer", evaluateRes(), "got EvaluateRes while FitRes was expected"),
        ("undecodable bytes", [0xFF, 0xFF, 0xFF, 0xFF], "not valid protobuf"),
        ("empty ClientMessage", [], "none of its oneof fields set"),
        ("negative num_examples", fitRes([tensor([2, 3], [1, 2, 3, 4, 5, 6]), tensor([3], [7, 8, 9])], numExamples: -1), "num_examples -1 is outside"),
        ("Int64.max num_examples", fitRes([tensor([2, 3], [1, 2, 3, 4, 5, 6]), tensor([3], [7, 8, 9])], numExamples: .max),
         "num_examples 9223372036854775807 is outside 0...2^53"),
    ]

    /// A violation ends the stream: the call fails with the reason and the client is unregistered.
    @Test(arguments: violations)
    func protocolViolationsEndTheStream(_ c: (String, [UInt8], String)) async throws {
        let (name, answer, hint) = c
        let h = try await Harness()
        try await h.withPeer(respond: { _ in [answer] }) { proxy in
            do {
                _ = try await proxy.fit(FitIns(round: 1, parameters: reference), timeout: .seconds(30))
                Issue.record("\(name): accepted")
            } catch {
                #expect("\(error)".contains(hint), "\(name): \(error)")
            }
            if !name.hasSuffix("num_examples") {
                #expect(await h.waitUntilUnregistered(), "\(name): the stream was ended")
                await #expect(throws: CompatError.self) { try await proxy.evaluate(EvaluateIns(round: 1, parameters: reference), timeout: .seconds(5)) }
            }
        }
        await h.server.stop()
    }

    /// One connection cannot register more than `maxStreamsPerConnection` clients: the server
    /// advertises the bound in its first HTTP/2 SETTINGS frame (SETTINGS_MAX_CONCURRENT_STREAMS,
    /// identifier 3), and swift-nio-http2 refuses streams beyond it. Read here by a raw TCP peer:
    /// grpc-swift's own client trips a debug assertion when the server refuses its extra streams.
    @Test func theServerAdvertisesAtMostFourStreamsPerConnection() async throws {
        let h = try await Harness()
        let settings = try serverHTTP2Settings(port: h.port)
        #expect(settings[3] == UInt32(CompatLimits.maxStreamsPerConnection), "SETTINGS: \(settings)")
        await h.server.stop()
    }

    @Test func anAnswerNobodyAskedForEndsTheStream() async throws {
        let h = try await Harness()
        try await h.withPeer(initial: [evaluateRes()], respond: { _ in [] }) { proxy in
            #expect(await h.waitUntilUnregistered(), "an unsolicited EvaluateRes ends the stream")
            do {
                _ = try await proxy.fit(FitIns(round: 1, parameters: reference), timeout: .seconds(5))
                Issue.record("a closed stream accepted an instruction")
            } catch {
                #expect("\(error)".contains("no instruction was pending"), "\(error)")
            }
        }
        await h.server.stop()
    }

    @Test func aPeerThatNeverAnswersTimesOutAndIsDropped() async throws {
        let h = try await Harness()
        try await h.withPeer(respond: { _ in [] }) { proxy in
            do {
                _ = try await proxy.fit(FitIns(round: 1, parameters: reference), timeout: .milliseconds(200))
                Issue.record("no answer was accepted")
            } catch {
                #expect("\(error)".contains("did not answer FitIns"), "\(error)")
            }
            #expect(await h.waitUntilUnregistered())
        }
        await h.server.stop()
    }

    @Test func finishSendsReconnectAndTheFlowerAnswerClosesCleanly() async throws {
        let h = try await Harness()
        try await h.withPeer(respond: { m in
            guard case .reconnect(let s) = m else { return [] }
            #expect(s == 0, "0 s: Flower's client shuts down")
            return [(try? CompatCodec.encode(FlowerClientMessage.disconnect(reason: FlowerReason.reconnect))) ?? []]
        }) { proxy in
            await proxy.finish(roundsCompleted: 3, reason: "done")
            #expect(!proxy.isConnected)
            #expect(await h.waitUntilUnregistered())
        }
        await h.server.stop()
    }
}

struct RawPeerError: Error, CustomStringConvertible { let description: String }

/// The settings (identifier → value) of the first SETTINGS frame an HTTP/2 server on 127.0.0.1
/// sends a plain TCP peer that opened with the client connection preface.
func serverHTTP2Settings(port: Int) throws -> [UInt16: UInt32] {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw RawPeerError(description: "socket: errno \(errno)") }
    defer { close(fd) }
    var timeout = timeval(tv_sec: 10, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else { throw RawPeerError(description: "connect: errno \(errno)") }
    // The preface, then an empty SETTINGS frame (length 0, type 4, flags 0, stream 0).
    let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8) + [0, 0, 0, 4, 0, 0, 0, 0, 0]
    guard preface.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, 0) }) == preface.count else {
        throw RawPeerError(description: "send: errno \(errno)")
    }
    var buffer: [UInt8] = []
    while true {
        var chunk = [UInt8](repeating: 0, count: 4096)
        let n = recv(fd, &chunk, chunk.count, 0)
        guard n > 0 else { throw RawPeerError(description: "no SETTINGS frame from the server (recv \(n), errno \(errno))") }
        buffer += chunk[0 ..< n]
        var offset = 0
        while buffer.count - offset >= 9 {
            let length = Int(buffer[offset]) << 16 | Int(buffer[offset + 1]) << 8 | Int(buffer[offset + 2])
            let (type, flags) = (buffer[offset + 3], buffer[offset + 4])
            guard buffer.count - offset - 9 >= length else { break }
            if type == 4 && flags & 1 == 0 {  // SETTINGS, not an ACK
                var settings: [UInt16: UInt32] = [:]
                for i in stride(from: offset + 9, to: offset + 9 + length - 5, by: 6) {
                    settings[UInt16(buffer[i]) << 8 | UInt16(buffer[i + 1])] = buffer[i + 2 ..< i + 6].reduce(0) { $0 << 8 | UInt32($1) }
                }
                return settings
            }
            offset += 9 + length
        }
    }
}
