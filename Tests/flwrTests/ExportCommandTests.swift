// `flwr export` and the CSV flags: parsing, validation and the errors a user sees for bad input.
import ArgumentParser
import FlowerCore
import FlowerRuntime
import Foundation
import Testing
import TestSupport
@testable import flwr

@Suite struct ExportCommandTests {
    @Test(arguments: [
        (["--input", "1x28"], "2 sizes"), (["--input", "0x28x28"], "every size >= 1"), (["--input", "abc"], "not a shape"),
        (["--format", "tflite"], "only export format is onnx"), (["--classes", "0"], "--classes must be at least 1"),
    ])
    func badFlagsAreRefused(extra: [String], words: String) {
        do {
            _ = try ExportCommand.parse(["--weights", "w.npz", "--out", "m.onnx"] + extra)
            Issue.record("\(extra) was accepted")
        } catch {
            let message = ExportCommand.message(for: error)
            #expect(message.contains(words), "\(message)")
        }
    }

    /// Weights of another model: the error names the missing tensor.
    @Test func weightsOfAnotherModelAreAClearError() throws {
        let dir = NSTemporaryDirectory() + "export-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let command = try ExportCommand.parse(["--model", "mlp", "--hidden", "4", "--input", "3", "--classes", "2",
                                               "--weights", dir + "/w.npz", "--out", dir + "/m.onnx"])
        try writeModelFile(dir + "/w.npz")
        #expect(throws: (any Error).self) { try command.run() }
        do { try command.run() } catch { #expect("\(error)".contains("\"1.weight\""), "\(error)") }
        #expect(!FileManager.default.fileExists(atPath: dir + "/m.onnx"))
    }

    @Test func csvFlagsReachTheLoader() throws {
        let source = try DatasetSource.parse(["--dataset", "csv", "--data-file", "d.csv", "--label-column", "30",
                                              "--csv-no-header", "--csv-skip-lines", "1", "--feature-stats", "s.csv"])
        #expect(source.fileOptions.files == .init(dataFile: "d.csv", labelColumn: "30", featureStats: "s.csv", header: false, skipLines: 1))
        #expect(throws: (any Error).self) { _ = try DatasetSource.parse(["--csv-skip-lines", "-1"]) }
    }
}

/// An .npz holding one array "conv1.weight" (not an mlp's).
private func writeModelFile(_ path: String) throws {
    try writeModel(try Parameters(shapes: [("conv1.weight", [2])], values: [1, 2]), to: path)
}
