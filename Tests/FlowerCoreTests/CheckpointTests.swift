import FedAvg
import FlowerCore
import TestSupport
import Foundation
import XCTest

final class CheckpointTests: XCTestCase {
    private func sampleCheckpoint() throws -> Checkpoint {
        let records = [
            RoundRecord(round: 1, loss: 0.9, accuracy: 0.6, fitClients: 3, failures: 0, seconds: 1.5,
                        bytesIn: 100, bytesOut: 200, fitMetrics: ["loss": .double(1)]),
            RoundRecord(round: 2, loss: .nan, accuracy: nil, fitClients: 2, failures: 1, seconds: 0.25,
                        centralMetrics: ["accuracy": .double(0.7), "note": .string("x")]),
        ]
        return Checkpoint(round: 2, parameters: try model([1.5, -0, .greatestFiniteMagnitude]),
                          history: History(rounds: records), seed: .max - 7, strategy: "FedAvg")
    }

    func testRoundTripKeepsEveryFieldAndTheDocumentedSize() throws {
        let cp = try sampleCheckpoint()
        let bytes = try cp.encoded()
        XCTAssertEqual(Array(bytes[0 ..< 8]), Array("FLWRCKPT".utf8))
        let headerLength = Int(bytes[12]) | Int(bytes[13]) << 8 | Int(bytes[14]) << 16 | Int(bytes[15]) << 24
        XCTAssertEqual(bytes.count, 24 + headerLength + 4 * 3, "24 + H + 4N bytes")
        let back = try Checkpoint.decode(bytes)
        XCTAssertEqual(back.round, 2)
        XCTAssertEqual(back.seed, .max - 7, "a 64-bit seed survives the JSON header exactly")
        XCTAssertEqual(back.parameters, cp.parameters)
        XCTAssertEqual(back.strategy, "FedAvg")
        XCTAssertTrue(try XCTUnwrap(back.history.rounds[1].loss).isNaN)
        XCTAssertEqual(back.history.rounds[0], cp.history.rounds[0])
        XCTAssertEqual(back.history.rounds[1].centralMetrics, cp.history.rounds[1].centralMetrics)
    }

    func testTruncatedOrForeignFilesAreRefused() throws {
        let bytes = try sampleCheckpoint().encoded()
        XCTAssertThrowsError(try Checkpoint.decode(Array(bytes.dropLast()))) {
            XCTAssertTrue("\($0)".contains("expected"), "\($0)")
        }
        var foreign = bytes
        foreign[0] = UInt8(ascii: "X")
        XCTAssertThrowsError(try Checkpoint.decode(foreign)) { XCTAssertTrue("\($0)".contains("magic"), "\($0)") }
        XCTAssertThrowsError(try Checkpoint.read(from: "/nonexistent/flwr.ckpt")) {
            XCTAssertEqual($0 as? CheckpointError, .missing(path: "/nonexistent/flwr.ckpt"))
        }
    }

    func testWriteIsAtomicAndLeavesNoTemporaryFile() throws {
        let dir = try makeTemporaryFolder("flwr-core-ckpt")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/server.ckpt"
        var cp = try sampleCheckpoint()
        try cp.write(to: path)
        cp.round = 3
        cp.history.rounds.append(RoundRecord(round: 3, loss: 0.5, accuracy: 0.8, fitClients: 3, failures: 0, seconds: 1))
        try cp.write(to: path)  // replaces the previous file
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["server.ckpt"])
        XCTAssertEqual(try Checkpoint.read(from: path).round, 3)
    }

    /// Four clients, half sampled per round: an interrupted run resumed from its round-2 checkpoint
    /// ends with the same model, the same history and the same clients sampled in round 3.
    func testResumeContinuesAtTheNextRoundWithNothingLost() async throws {
        func makeClients() -> [FakeClient] {
            (0 ..< 4).map { i in adder("c\(i)", delta: [Float(i), Float(2 * i), 1], numExamples: i + 1) }
        }
        func makeStrategy() throws -> FedAvg {
            FedAvg(fractionFit: 0.5, fractionEvaluate: 0, minFitClients: 2, minAvailableClients: 4, seed: 42,
                   initialParameters: try model([0, 0, 0]),
                   evaluateFn: { _, p in (Double(p.values[0]), ["accuracy": .double(Double(p.values[2]))]) })
        }
        func manager(_ cs: [FakeClient]) -> InMemoryClientManager {
            let m = InMemoryClientManager()
            for c in cs { _ = m.register(c) }
            return m
        }
        let dir = try makeTemporaryFolder("flwr-core-resume")
        defer { try? FileManager.default.removeItem(atPath: dir) }

        let straightClients = makeClients()
        let straight = try await Server(clientManager: manager(straightClients), strategy: makeStrategy(),
                                        options: ServerOptions(historyPath: dir + "/straight.jsonl"))
            .fit(numRounds: 3, timeout: .seconds(30))

        let options = ServerOptions(historyPath: dir + "/history.jsonl", checkpointPath: dir + "/server.ckpt")
        _ = try await Server(clientManager: manager(makeClients()), strategy: makeStrategy(), options: options)
            .fit(numRounds: 2, timeout: .seconds(30))
        let checkpoint = try Checkpoint.read(from: dir + "/server.ckpt")
        XCTAssertEqual(checkpoint.round, 2)
        XCTAssertEqual(checkpoint.seed, 42)

        let resumedClients = makeClients()
        let resumed = try await Server(clientManager: manager(resumedClients), strategy: makeStrategy(), options: options)
            .fit(numRounds: 3, timeout: .seconds(30), resumingFrom: checkpoint)

        XCTAssertEqual(resumed.parameters, straight.parameters)
        XCTAssertEqual(resumed.roundsCompleted, 3)
        func essentials(_ h: History) -> [[Double?]] {
            h.rounds.map { [Double($0.round), $0.loss, $0.accuracy, Double($0.fitClients), Double($0.failures)] }
        }
        XCTAssertEqual(essentials(resumed.history), essentials(straight.history))
        XCTAssertEqual(resumed.history.rounds.prefix(2).map(\.seconds), checkpoint.history.rounds.map(\.seconds))
        for (a, b) in zip(straightClients, resumedClients) {
            XCTAssertEqual(a.recorded.fits.filter { $0.round == 3 }.count, b.recorded.fits.map(\.round).filter { $0 == 3 }.count,
                           "client \(a.id) sampled alike in round 3")
            XCTAssertFalse(b.recorded.fits.contains { $0.round < 3 }, "the resumed run must not redo rounds 1-2")
        }
        XCTAssertEqual(try Checkpoint.read(from: dir + "/server.ckpt").round, 3)
        let lines = try String(contentsOfFile: dir + "/history.jsonl", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 3)
        let rounds = try lines.map { try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])["round"] as? Int }
        XCTAssertEqual(rounds, [1, 2, 3])
    }
}

extension CheckpointTests {
    /// Version 2 stores the strategy's state (server optimiser moments) bit for bit after the
    /// parameters: 24 + H + 4N + 4S bytes.
    func testStrategyStateRoundTripsBitForBit() throws {
        var cp = try sampleCheckpoint()
        cp.state = StrategyState(tensors: ["m": [0.1, -.leastNonzeroMagnitude, 3e-38], "v": [1, 2, 3]],
                                 scalars: ["step": 7, "clip": 0.1 + 0.2])
        let bytes = try cp.encoded()
        let headerLength = Int(bytes[12]) | Int(bytes[13]) << 8 | Int(bytes[14]) << 16 | Int(bytes[15]) << 24
        XCTAssertEqual(bytes.count, 24 + headerLength + 4 * 3 + 4 * 6)
        let back = try Checkpoint.decode(bytes)
        XCTAssertEqual(back.state, cp.state)
        XCTAssertEqual(back.state.scalars["clip"]?.bitPattern, (0.1 + 0.2).bitPattern)
        XCTAssertThrowsError(try Checkpoint.decode(Array(bytes.dropLast(4)))) {
            XCTAssertTrue("\($0)".contains("expected"), "\($0)")
        }
    }
}

extension CheckpointTests {
    private func fedBuffCheckpoint() throws -> Checkpoint {
        var cp = try sampleCheckpoint()
        cp.fedBuff = FedBuffCheckpoint(
            dispatches: 9,
            inFlight: [.init(client: "partition-4", version: 0, arrival: 0.1 + 0.2, sequence: 5),
                       .init(client: "partition-1", version: 2, arrival: 7.25, sequence: 8),
                       .init(client: "tcp-x", version: 1, arrival: nil, sequence: 6)],
            versions: [0: Self.version0, 1: Self.version1])
        return cp
    }

    private static let version0: [Float] = [0, 1, -2]
    private static let version1: [Float] = [.leastNonzeroMagnitude, -0, 4]

    private static func formatVersion(_ bytes: [UInt8]) -> Int {
        Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
    }

    /// Version 3 keeps FedBuff's clients in flight (arrivals bit for bit) and the sampler's count in
    /// the header, and the models of the older versions they train on after the state buffers:
    /// 24 + H + 4N(1 + V) bytes.
    func testFedBuffStateRoundTripsWithItsOlderVersions() throws {
        let cp = try fedBuffCheckpoint()
        let bytes = try cp.encoded()
        XCTAssertEqual(Self.formatVersion(bytes), 3)
        let headerLength = Int(bytes[12]) | Int(bytes[13]) << 8 | Int(bytes[14]) << 16 | Int(bytes[15]) << 24
        XCTAssertEqual(bytes.count, 24 + headerLength + 4 * 3 * (1 + 2))
        // Version 0's model follows the parameters, then version 1's.
        let tail = Array(bytes.suffix(24))
        let words: [UInt32] = stride(from: 0, to: 24, by: 4).map { i in
            UInt32(tail[i]) | UInt32(tail[i + 1]) << 8 | UInt32(tail[i + 2]) << 16 | UInt32(tail[i + 3]) << 24
        }
        XCTAssertEqual(words, (Self.version0 + Self.version1).map(\.bitPattern))
        let back = try Checkpoint.decode(bytes)
        XCTAssertEqual(back.fedBuff, cp.fedBuff)
        XCTAssertEqual(back.parameters, cp.parameters)
        XCTAssertEqual(back.round, 2)
        XCTAssertEqual(back.fedBuff?.inFlight[0].arrival?.bitPattern, (0.1 + 0.2).bitPattern)
        XCTAssertNil(back.fedBuff?.inFlight[2].arrival)
        XCTAssertThrowsError(try Checkpoint.decode(Array(bytes.dropLast(4)))) {
            XCTAssertTrue("\($0)".contains("expected"), "\($0)")
        }
    }

    /// A checkpoint without FedBuff state is still written as version 2 (older builds read it), and
    /// a version 2 file reads back with no FedBuff state.
    func testWithoutFedBuffStateTheFormatStaysVersion2() throws {
        let bytes = try sampleCheckpoint().encoded()
        XCTAssertEqual(Self.formatVersion(bytes), 2)
        XCTAssertNil(try Checkpoint.decode(bytes).fedBuff)
    }

    /// FedBuff state that a resumed run could not follow is refused when read.
    func testInconsistentFedBuffStateIsRefused() throws {
        func refusal(_ change: (inout FedBuffCheckpoint) -> Void) throws -> String {
            var cp = try fedBuffCheckpoint()
            change(&cp.fedBuff!)
            do {
                _ = try Checkpoint.decode(try cp.encoded())
                return "accepted"
            } catch { return "\(error)" }
        }
        XCTAssertTrue(try refusal { $0.versions[0] = nil }.contains("trains on version 0, which update 2's checkpoint does not hold"))
        XCTAssertTrue(try refusal { $0.inFlight[1].version = 3 }.contains("trains on version 3"))
        XCTAssertTrue(try refusal { $0.inFlight[1].sequence = 9 }.contains("start number 9, outside 0..<9"))
        XCTAssertTrue(try refusal { $0.inFlight[2].client = "partition-4" }.contains("in flight twice"))
        XCTAssertTrue(try refusal { $0.versions[2] = [1, 2, 3] }.contains("not an older version of update 2"))
        XCTAssertTrue(try refusal { $0.versions[1] = [1, 2] }.contains("holds 2 values, the model 3"))
        XCTAssertTrue(try refusal { $0.dispatches = Int(Int64.max) }.contains("dispatch count 9223372036854775807 is above 9007199254740992"))
        XCTAssertEqual(try refusal { _ in }, "accepted")
    }
}
