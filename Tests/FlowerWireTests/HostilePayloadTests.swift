// Hostile answers against a real listening server: a FitRes claiming ten million map entries, a
// shape list of 10^7 dimensions, Int64.max examples, a NUL in a metrics key. Each fails its call
// with a typed error and a log line, the server's memory stays bounded, the connection is closed
// (proto/README.md, "Results that fail"), and the next honest exchange completes.
import FlowerCore
@testable import FlowerWire
@testable import FlowerWireCodec
import Foundation
import TestSupport
import XCTest

final class HostilePayloadTests: XCTestCase {
    struct Answer {
        let name: String
        let fitRes: [UInt8]  // ClientMessage payload
        let fragment: String
    }

    static var cases: [Answer] {
        let tenMillionEntries = PB.bytes(3, PB.field(2, 1) + Hostile.repeated(PB.bytes(5, []), 10_000_000))
        let hugeShape = PB.bytes(3, PB.field(2, 1) + PB.bytes(3, PB.bytes(1, PB.bytes(1, [0x77]) + PB.bytes(2, [UInt8](repeating: 1, count: 10_000_000)))))
        return [
            Answer(name: "ten million map entries", fitRes: tenMillionEntries, fragment: "more than 4096 config/metrics map entries"),
            Answer(name: "10^7 shape dims", fitRes: hugeShape, fragment: "more than 32 dimensions in one tensor's shape"),
            Answer(name: "Int64.max examples", fitRes: PB.bytes(3, PB.field(2, 1) + PB.field(4, UInt64(Int64.max))), fragment: "FitRes.num_examples = 9223372036854775807 exceeds 2^53"),
            Answer(name: "NUL in a metrics key", fitRes: PB.bytes(3, PB.field(2, 1) + PB.bytes(5, PB.bytes(1, [0x61, 0]) + PB.bytes(2, PB.field(3, 1)))),
                    fragment: "contains a NUL byte"),
        ]
    }

    func testHostileAnswersFailTheirCallAndTheServerCarriesOn() async throws {
        let manager = TestManager()
        let log = CollectingLog()
        var config = WireServerConfig(host: "127.0.0.1", port: 0, maxFrameBytes: 64 << 20, handshakeTimeout: .seconds(5))
        config.raiseDescriptorLimit = false
        let server = WireServer(config: config, manager: manager, logger: log.logger)
        let port = try await server.start()
        for hostile in Self.cases {
            let peer = try RawPeer(port: port)
            defer { peer.close() }
            guard case .welcome? = try peer.handshake(id: "hostile") else { return XCTFail("\(hostile.name): no welcome") }
            let proxy = try await manager.waitForProxy("hostile")
            let before = residentMegabytes()
            let call = Task { try await proxy.fit(FitIns(round: 1, parameters: try testModel(count: 10)), timeout: .seconds(30)) }
            guard case .fit? = try peer.next() else { return XCTFail("\(hostile.name): no FitIns") }
            try? peer.send(FrameEncoder.frame(hostile.fitRes))
            do {
                _ = try await call.value
                XCTFail("\(hostile.name): the call succeeded")
            } catch let error as WireError {
                switch error {
                case .limitExceeded(let why), .malformedMessage(let why):  // a bound, or NUL (structure)
                    XCTAssertTrue(why.contains(hostile.fragment), "\(hostile.name): \(why)")
                default:
                    XCTFail("\(hostile.name): got \(error)")
                }
            }
            XCTAssertNil(try peer.next(seconds: 10), "\(hostile.name): the server must close the connection")
            try await manager.wait { $0.proxy("hostile") == nil }
            let grown = residentMegabytes() - before
            XCTAssertLessThan(grown, 100, "\(hostile.name): server grew \(grown) MB")
            print("hostile answer \(hostile.name) (\(hostile.fitRes.count) bytes): refused, resident memory +\(Int(grown)) MB")
        }
        XCTAssertGreaterThanOrEqual(log.count(containing: "more than 4096"), 1, "the refusal must be logged: \(log.lines.withLock { $0 })")
        try await assertGoodExchange(manager, port: port)
        await server.stop()
    }
}

/// The measurement: one 100 MB FitRes of empty map entries (which took a default server
/// from 40 MB to 2.4 GB) against a server at the default 256 MiB frame limit. The peak resident
/// memory it adds is the received frame itself, not libprotobuf-c's 24× of it.
final class HostilePayloadReleaseTests: XCTestCase {
    override func setUpWithError() throws {
        #if DEBUG
        throw XCTSkip("release-only: run swift test -c release --filter ReleaseTests")
        #endif
    }

    /// VmHWM of this process in MB (/proc/self/status).
    func peakMegabytes() -> Double {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmHWM:") } ?? ""
        return Double(line.split(separator: " ").dropFirst().first ?? "0").map { $0 / 1024 } ?? 0
    }

    func testA100MBFrameOfEmptyMapEntriesCostsItsOwnSizeOnly() async throws {
        let manager = TestManager()
        var config = WireServerConfig(host: "127.0.0.1", port: 0, maxFrameBytes: 256 << 20, handshakeTimeout: .seconds(5))
        config.raiseDescriptorLimit = false
        let server = WireServer(config: config, manager: manager, logger: quietLogger)
        let port = try await server.start()
        let frame = FrameEncoder.frame(PB.bytes(3, PB.field(2, 1) + Hostile.repeated(PB.bytes(5, []), 50_000_000)))
        XCTAssertGreaterThan(frame.count, 100_000_000)
        let peer = try RawPeer(port: port)
        defer { peer.close() }
        guard case .welcome? = try peer.handshake(id: "hostile") else { return XCTFail("no welcome") }
        let proxy = try await manager.waitForProxy("hostile")
        let call = Task { try await proxy.fit(FitIns(round: 1, parameters: try testModel(count: 10)), timeout: .seconds(60)) }
        guard case .fit? = try peer.next() else { return XCTFail("no FitIns") }
        let reset = (try? "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)) != nil
        let before = peakMegabytes()
        try? peer.send(frame)
        do {
            _ = try await call.value
            XCTFail("the call succeeded")
        } catch {
            XCTAssertTrue("\(error)".contains("more than 4096 config/metrics map entries"), "\(error)")
        }
        let added = peakMegabytes() - before
        print("hostile 100 MB frame of empty map entries: peak resident memory +\(Int(added)) MB (VmHWM reset: \(reset)); before the limits: +2,400 MB")
        if reset { XCTAssertLessThan(added, 250, "peak grew \(added) MB for a \(frame.count >> 20) MiB frame") }
        try await assertGoodExchange(manager, port: port)
        await server.stop()
    }
}
