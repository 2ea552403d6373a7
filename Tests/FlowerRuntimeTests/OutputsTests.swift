// The runtimes' JSON lines and .npz model files, read back.
import CIFARLoader
import FlowerCore
import Foundation
import Testing
@testable import FlowerRuntime

struct OutputsTests {
    @Test func jsonLinesSortKeysAndWriteNonFiniteNumbersAsNull() throws {
        let line = JSONLines.line(["b": JSONLines.value(.double(.nan)), "a": JSONLines.value(.int(3)),
                                   "c": JSONLines.value(.string("x\"y\n")), "d": JSONLines.value(.bool(true)),
                                   "e": JSONLines.value(.bytes([1, 2, 3]))])
        #expect(line == #"{"a":3,"b":null,"c":"x\"y\n","d":true,"e":3}"#)
    }

    @Test func jsonLinesFileAppendsOneObjectPerLine() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("flwr-jsonl-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let file = try JSONLinesFile(path: path)
        try file.append(["epoch": .int(1), "loss": .double(0.5)])
        try file.append(["epoch": .int(2), "loss": .double(.infinity)])
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text == "{\"epoch\":1,\"loss\":0.5}\n{\"epoch\":2,\"loss\":null}\n")
        #expect(throws: RuntimeError.self) { try JSONLinesFile(path: "/nonexistent-folder/x.jsonl") }
    }

    @Test func writeModelStoresEveryTensorUnderItsName() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("flwr-model-\(UUID().uuidString).npz").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let parameters = try Parameters(shapes: [("fc.weight", [2, 3]), ("fc.bias", [2])], values: (0 ..< 8).map(Float.init))
        try writeModel(parameters, to: path)
        let arrays = try NPZ.read(path)
        #expect(arrays.map(\.name) == ["fc.weight", "fc.bias"])
        #expect(arrays.map(\.shape) == [[2, 3], [2]])
    }
}
