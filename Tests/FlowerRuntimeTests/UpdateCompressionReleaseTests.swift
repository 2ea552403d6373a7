// --update-compression in a whole federation: three clients over loopback on real Fashion-MNIST,
// float32 against int8 updates (the server decoding each onto the weights it sent). Release-only.
import CIFARLoader
import FlowerCore
import FlowerLearning
import FlowerWire
import Foundation
import Logging
import Privacy
import XCTest
@testable import FlowerRuntime

final class UpdateCompressionReleaseTests: XCTestCase {
    private func run(_ mode: UpdateCompression, _ adjust: (inout SimulationConfig) -> Void = { _ in }) async throws -> History {
        #if DEBUG
        throw XCTSkip("release-only: run swift test -c release --filter ReleaseTests")
        #endif
        guard FileManager.default.fileExists(atPath: "/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz") else {
            throw XCTSkip("Fashion-MNIST not installed: run scripts/bootstrap")
        }
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("flwr-compress-\(UUID().uuidString)").path
        addTeardownBlock { try? FileManager.default.removeItem(atPath: out) }
        var config = SimulationConfig(dataset: DatasetLocation(kind: .fashionMNIST), model: try ModelSelection(zoo: "mlp", hidden: [64]))
        config.clients = 3
        config.rounds = 3
        config.alpha = 0
        config.seed = 7
        config.maxTrainExamples = 300
        config.maxTestExamples = 1000
        config.transport = .tcp
        config.out = out
        config.updateCompression = mode
        adjust(&config)
        let result = try await Simulation(config: config, logger: Logger(label: "test")).run()
        return try XCTUnwrap(result).history
    }

    func testInt8UpdatesLearnLikeFloat32AtAQuarterOfTheUpload() async throws {
        let plain = try await run(.none)
        let int8 = try await run(.int8)
        XCTAssertEqual(int8.rounds.map(\.fitClients), [3, 3, 3])
        XCTAssertEqual(int8.rounds.map(\.failures), [0, 0, 0])
        let a = try XCTUnwrap(plain.rounds.last?.accuracy), b = try XCTUnwrap(int8.rounds.last?.accuracy)
        XCTAssertGreaterThan(a, 0.5, "the float32 federation learns")
        XCTAssertEqual(b, a, accuracy: 0.03, "int8 \(b) vs float32 \(a) on 1,000 test images")
        for (p, q) in zip(plain.rounds, int8.rounds) {
            // One byte per parameter (zlib on top when it pays) instead of four.
            XCTAssertLessThan(Double(q.bytesIn), 0.26 * Double(p.bytesIn), "round \(p.round): \(q.bytesIn) vs \(p.bytesIn)")
        }
    }

    /// DP-FedAvg on int8 updates with the model broadcast as fp16: the server decodes each update,
    /// clips it and noises the sum (the order README's "Compressed updates" explains); every round
    /// completes, is charged to the accountant, and the upload stays a quarter of float32's.
    func testDPFedAvgOnCompressedUpdates() async throws {
        let dp = try await run(.int8) {
            // DP-FedAvg's accountant assumes Poisson sampling (validate() refuses uniform beside it).
            $0.dpFedAvg = DPFedAvgConfig(noiseMultiplier: 0.5, clipping: .fixed(clipNorm: 1), samplingRate: 1); $0.sampling = .poisson
            $0.broadcastCompression = .fp16
        }
        XCTAssertEqual(dp.rounds.map(\.fitClients), [3, 3, 3])
        XCTAssertEqual(dp.rounds.map(\.failures), [0, 0, 0])
        let epsilons = dp.rounds.compactMap { $0.privacy?.epsilon }
        XCTAssertEqual(epsilons.count, 3, "every round is charged")
        XCTAssertTrue(epsilons[0] > 0 && epsilons[0] < epsilons[1] && epsilons[1] < epsilons[2], "\(epsilons)")
        // mlp 784-64-10: 50,890 parameters, 4 bytes each as float32, from 3 clients.
        let float32Upload = 3.0 * 4 * 50_890
        for r in dp.rounds {
            XCTAssertLessThan(Double(r.bytesIn), 0.26 * float32Upload, "round \(r.round) upload \(r.bytesIn)")
            XCTAssertLessThan(Double(r.bytesOut), 0.55 * float32Upload, "round \(r.round) download \(r.bytesOut): fp16 model")
        }
    }

    /// `--no-zlib`: int8 updates travel as they are encoded, one byte per parameter plus the
    /// frame and message framing, the same every round; with zlib they are smaller (the steps are
    /// mostly small). The learning is the same: zlib is lossless.
    func testNoZlibSendsInt8UpdatesUncompressed() async throws {
        let zlib = try await run(.int8)
        let raw = try await run(.int8) { $0.zlib = false }
        // mlp 784-64-10: 50,890 parameters, one byte each, from 3 clients, plus per-tensor scales and framing.
        let payload = 3 * 50_890
        for (z, r) in zip(zlib.rounds, raw.rounds) {
            XCTAssertGreaterThanOrEqual(Int(r.bytesIn), payload, "round \(r.round)")
            XCTAssertLessThan(Int(r.bytesIn), payload + 3 * 1024, "round \(r.round): \(r.bytesIn) bytes, little beyond the payload")
            XCTAssertLessThan(z.bytesIn, r.bytesIn, "round \(r.round): zlib pays on int8")
            XCTAssertEqual(try XCTUnwrap(z.loss), try XCTUnwrap(r.loss), accuracy: 1e-6, "round \(r.round): zlib is lossless")
        }
        XCTAssertEqual(Set(raw.rounds.map(\.bytesIn)).count, 1, "uncompressed, every round's upload is the same size: \(raw.rounds.map(\.bytesIn))")
    }

    func testVirtualClientsRefuseUpdateCompression() async throws {
        #if DEBUG
        throw XCTSkip("release-only: run swift test -c release --filter ReleaseTests")
        #endif
        guard FileManager.default.fileExists(atPath: "/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz") else {
            throw XCTSkip("Fashion-MNIST not installed: run scripts/bootstrap")
        }
        var config = SimulationConfig(dataset: DatasetLocation(kind: .fashionMNIST), model: try ModelSelection(zoo: "mlp", hidden: [8]))
        config.transport = .virtual
        config.updateCompression = .fp16
        config.out = FileManager.default.temporaryDirectory.appendingPathComponent("flwr-compress-\(UUID().uuidString)").path
        do {
            _ = try await Simulation(config: config, logger: Logger(label: "test")).run()
            XCTFail("virtual clients ran with update compression")
        } catch {
            XCTAssertEqual(error as? ConfigurationError, .simulation(.updateCompressionNeedsTCP))
            XCTAssertTrue("\(error)".contains("--transport tcp"), "\(error)")
        }
    }
}
