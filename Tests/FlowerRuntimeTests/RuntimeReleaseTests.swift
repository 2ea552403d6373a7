// The runtimes in-process, without the executable: a federation of three clients over loopback
// (Simulation) and centralised training (CentralTraining) on a few hundred real Fashion-MNIST
// images. Release-only: the kernels run ~100x slower in a debug build.
import CIFARLoader
import CNNModel
import FlowerCore
import FlowerLearning
import Foundation
import Logging
import XCTest
@testable import FlowerRuntime

final class RuntimeReleaseTests: XCTestCase {
    private func prerequisites() throws {
        #if DEBUG
        throw XCTSkip("release-only: run swift test -c release --filter ReleaseTests")
        #endif
        guard FileManager.default.fileExists(atPath: "/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz") else {
            throw XCTSkip("Fashion-MNIST not installed: run scripts/bootstrap")
        }
    }

    private func temporaryFolder() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("flwr-runtime-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        return dir
    }

    private func jsonLines(_ path: String) throws -> [[String: Any]] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map {
            try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
    }

    func testSimulationOfThreeClientsLearnsAndWritesItsOutputs() async throws {
        try prerequisites()
        let out = try temporaryFolder()
        let model = try ModelSelection(zoo: "mlp", hidden: [64])
        var config = SimulationConfig(dataset: DatasetLocation(kind: .fashionMNIST), model: model)
        config.clients = 3
        config.rounds = 2
        config.alpha = 0  // IID: every client sees every class
        config.seed = 7
        config.maxTrainExamples = 150
        config.maxTestExamples = 300
        config.out = out
        let finished = try await Simulation(config: config, logger: Logger(label: "test")).run()
        let result = try XCTUnwrap(finished, "a simulation not stopped by a signal returns its result")

        XCTAssertEqual(result.history.rounds.map(\.round), [1, 2])
        for r in result.history.rounds {
            XCTAssertEqual(r.fitClients, 3)
            XCTAssertEqual(r.failures, 0)
        }
        // 450 training images in two rounds: well above chance (0.1) on ten classes.
        let accuracy = try XCTUnwrap(result.history.rounds.last?.accuracy)
        XCTAssertGreaterThan(accuracy, 0.3)
        XCTAssertLessThanOrEqual(accuracy, 1)

        // history.jsonl holds the same rounds; model.npz loads back into the model's layout.
        let lines = try jsonLines(result.historyPath)
        XCTAssertEqual(lines.count, 2)
        // (history.jsonl prints the shortest decimal that reads back to the same Double, JSON's reader
        // may land one ulp away.)
        XCTAssertEqual(try XCTUnwrap(lines.last?["accuracy"] as? Double), accuracy, accuracy: 1e-12)
        let layout = try model.build(input: .image(channels: 1, height: 28, width: 28), classes: 10, seed: 7, threads: 1)
            .layout.map { (name: $0.name, shape: $0.shape) }
        let weights = try loadWeights(result.modelPath, layout: layout)
        XCTAssertEqual(weights.layout.map(\.name), layout.map(\.name))
        XCTAssertTrue(try String(contentsOfFile: result.plotPath, encoding: .utf8).contains("<svg"))
        XCTAssertTrue(result.report.hasPrefix("round  accuracy  loss"))
        XCTAssertTrue(result.report.contains(String(format: "%8.4f", accuracy)))
    }

    func testCentralTrainingWritesOneJSONLinePerEpoch() throws {
        try prerequisites()
        let out = try temporaryFolder()
        var config = CentralTrainingConfig(dataset: DatasetLocation(kind: .fashionMNIST), model: try ModelSelection(zoo: "mlp", hidden: [64]))
        config.epochs = 2
        config.maxTrainExamples = 600
        config.threads = 2
        config.metricsOut = out + "/m.jsonl"
        config.modelOut = out + "/model.npz"
        let epochs = try CentralTraining(config: config, logger: Logger(label: "test")).run()
        XCTAssertEqual(epochs.map(\.epoch), [1, 2])
        let lines = try jsonLines(out + "/m.jsonl")
        XCTAssertEqual(lines.count, 2)
        XCTAssertEqual(Set(lines[0].keys), ["epoch", "loss", "accuracy", "test_loss", "seconds", "images_per_s"])
        XCTAssertEqual(try XCTUnwrap(lines[1]["accuracy"] as? Double), epochs[1].testAccuracy, accuracy: 1e-12)
        XCTAssertGreaterThan(epochs[1].testAccuracy, 0.5)
        XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/model.npz"))
    }
}
