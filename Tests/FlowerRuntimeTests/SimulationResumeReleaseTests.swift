// `flwr simulate --checkpoint-dir/--resume` in process, on real Fashion-MNIST: a run stopped after
// round 2 and resumed to round 4 has the uninterrupted run's history (virtual clients on the
// virtual clock, and TCP clients); an asynchronous run resumed after a server update sends the
// clients that were in flight their versions again and has the uninterrupted run's history too;
// checkpoints another run could not continue are
// refused with the reason. Release-only: the kernels run ~100x slower in a debug build.
import CIFARLoader
import FlowerCore
import FlowerLearning
import Foundation
import Logging
import XCTest
@testable import FlowerRuntime

final class SimulationResumeReleaseTests: XCTestCase {
    private static let split = Result { try DatasetLocation(kind: .fashionMNIST).load() }

    private func prerequisites() throws -> DatasetSplit {
        #if DEBUG
        throw XCTSkip("release-only: run swift test -c release --filter ReleaseTests")
        #endif
        guard FileManager.default.fileExists(atPath: "/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz") else {
            throw XCTSkip("Fashion-MNIST not installed: run scripts/bootstrap")
        }
        return try Self.split.get()
    }

    private func temporaryFolder() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("flwr-resume-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        return dir
    }

    private func config(_ transport: SimulationTransport, out: String, hidden: Int = 32) throws -> SimulationConfig {
        var c = SimulationConfig(dataset: DatasetLocation(kind: .fashionMNIST), model: try ModelSelection(zoo: "mlp", hidden: [hidden]))
        c.transport = transport
        c.clients = 10; c.clientsPerRound = 3; c.alpha = 0.5; c.seed = 11
        c.maxTrainExamples = 200; c.maxTestExamples = 1000
        c.parallel = 2
        c.out = out
        if transport == .virtual { c.clientSpeed = LogNormal(mu: 0, sigma: 1) }
        return c
    }

    private func run(_ c: SimulationConfig, on split: DatasetSplit) async throws -> History {
        let result = try await Simulation(config: c, logger: Logger(label: "test")).run(on: split)
        return try XCTUnwrap(result, "a simulation not stopped by a signal returns its result").history
    }

    /// Everything a round records except its wall-clock seconds.
    private func assertSameLearning(_ a: [RoundRecord], _ b: [RoundRecord], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, file: file, line: line)
        for (x, y) in zip(a, b) {
            XCTAssertEqual(x.round, y.round, file: file, line: line)
            XCTAssertEqual(try XCTUnwrap(x.loss), try XCTUnwrap(y.loss), accuracy: 1e-6 * max(1, abs(y.loss ?? 0)),
                           "round \(x.round)", file: file, line: line)
            XCTAssertEqual(x.accuracy, y.accuracy, "round \(x.round)", file: file, line: line)
            XCTAssertEqual(x.fitClients, y.fitClients, file: file, line: line)
            XCTAssertEqual(x.failures, y.failures, file: file, line: line)
            XCTAssertEqual(x.virtualSeconds, y.virtualSeconds, file: file, line: line)
            XCTAssertEqual(x.virtualTime, y.virtualTime, file: file, line: line)
        }
    }

    func testASyncRunResumedAfterRound2HasTheUninterruptedHistory() async throws {
        let split = try prerequisites()
        for transport in [SimulationTransport.virtual, .tcp] {
            let whole = try temporaryFolder(), parts = try temporaryFolder()
            var full = try config(transport, out: whole)
            full.rounds = 4
            let reference = try await run(full, on: split)

            var first = try config(transport, out: parts)
            first.rounds = 2
            first.checkpointDir = parts + "/ckpt"
            _ = try await run(first, on: split)
            XCTAssertEqual(try Checkpoint.read(from: parts + "/ckpt/checkpoint.flwr").round, 2)
            var second = first
            second.rounds = 4
            second.resume = true
            let resumed = try await run(second, on: split)

            XCTAssertEqual(resumed.rounds.map(\.round), [1, 2, 3, 4], "\(transport)")
            assertSameLearning(resumed.rounds, reference.rounds)
            // The losses moved: the rounds after the resume trained.
            XCTAssertEqual(Set(reference.rounds.compactMap(\.loss)).count, 4)
            if transport == .virtual { XCTAssertNotNil(resumed.rounds.last?.virtualTime) }
            let lines = try String(contentsOfFile: parts + "/history.jsonl", encoding: .utf8).split(separator: "\n")
            XCTAssertEqual(lines.count, 4, "history.jsonl holds each round once")
        }
    }

    /// FedBuff resumed after update 2 of 4: the checkpoint holds the clients in flight on their
    /// versions and the sampler's position, so updates 3–4 are the uninterrupted run's (same
    /// clients, losses, staleness and virtual times).
    func testAnAsyncRunResumedAfterUpdate2HasTheUninterruptedHistory() async throws {
        let split = try prerequisites()
        let whole = try temporaryFolder(), parts = try temporaryFolder()
        var full = try config(.virtual, out: whole)
        full.mode = .async
        full.fedBuff = FedBuffConfig(concurrency: 4, bufferSize: 2)
        full.rounds = 4
        let reference = try await run(full, on: split)

        var first = full
        first.out = parts
        first.rounds = 2
        first.checkpointDir = parts + "/ckpt"
        _ = try await run(first, on: split)
        var second = first
        second.rounds = 4
        second.resume = true
        let resumed = try await run(second, on: split)

        XCTAssertEqual(resumed.rounds.map(\.round), [1, 2, 3, 4])
        assertSameLearning(resumed.rounds, reference.rounds)
        XCTAssertEqual(resumed.rounds.map(\.staleness), reference.rounds.map(\.staleness))
        XCTAssertEqual(resumed.rounds.compactMap(\.virtualTime).count, 4)
        XCTAssertEqual(Set(reference.rounds.compactMap(\.loss)).count, 4, "the updates after the resume trained")
        // The checkpoint of update 4 holds the clients then in flight.
        let last = try XCTUnwrap(try Checkpoint.read(from: parts + "/ckpt/checkpoint.flwr").fedBuff)
        XCTAssertEqual(last.inFlight.count, 3, "4 training, less the one whose result made update 4")
    }

    /// A checkpoint this run could not continue is refused, naming the flag to change.
    func testCheckpointsOfAnotherRunAreRefused() async throws {
        let split = try prerequisites()
        let out = try temporaryFolder()
        var sync = try config(.virtual, out: out)
        sync.rounds = 1
        sync.checkpointDir = out + "/ckpt"
        _ = try await run(sync, on: split)

        var async = sync
        async.resume = true
        async.rounds = 2
        async.mode = .async
        async.fedBuff = FedBuffConfig(concurrency: 4, bufferSize: 2)
        await assertRefused(async, on: split, mentioning: "--mode sync")

        var otherModel = try config(.virtual, out: out, hidden: 16)
        otherModel.checkpointDir = sync.checkpointDir
        otherModel.resume = true
        otherModel.rounds = 2
        await assertRefused(otherModel, on: split, mentioning: "laid out differently")

        var noClock = sync
        noClock.clientSpeed = nil
        noClock.resume = true
        noClock.rounds = 2
        await assertRefused(noClock, on: split, mentioning: "virtual clock")

        var noDir = sync
        noDir.checkpointDir = nil
        noDir.resume = true
        await assertRefused(noDir, on: split, mentioning: "--resume continues from the checkpoint in --checkpoint-dir")
    }

    private func assertRefused(_ c: SimulationConfig, on split: DatasetSplit, mentioning text: String,
                               file: StaticString = #filePath, line: UInt = #line) async {
        do {
            _ = try await Simulation(config: c, logger: Logger(label: "test")).run(on: split)
            XCTFail("resumed although it should be refused (\(text))", file: file, line: line)
        } catch {
            XCTAssertTrue("\(error)".contains(text), "\(error)", file: file, line: line)
        }
    }
}
