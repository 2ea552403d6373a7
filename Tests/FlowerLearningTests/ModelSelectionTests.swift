import CIFARLoader
import CNNModel
import FlowerCore
@testable import FlowerLearning
import Foundation
import Testing

/// `--initial-model` weights: by name and shape, in any order, nothing missing or extra; spec files.
struct ModelSelectionTests {
    let layout: [(name: String, shape: [Int])] = [("0.weight", [2, 3]), ("0.bias", [2])]

    func write(_ arrays: [NPZArray]) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("w-\(UUID().uuidString).npz").path
        try NPZ.write(arrays, to: path)
        return path
    }

    @Test func loadsByNameInLayoutOrder() throws {
        let path = try write([NPZArray(name: "0.bias", shape: [2], floats: [7, 8]),
                              NPZArray(name: "0.weight", shape: [2, 3], floats: [1, 2, 3, 4, 5, 6])])
        let p = try loadWeights(path, layout: layout)
        #expect(p.values == [1, 2, 3, 4, 5, 6, 7, 8])
        #expect(p.layout.map(\.name) == ["0.weight", "0.bias"])
    }

    @Test(arguments: [
        ([NPZArray(name: "0.weight", shape: [2, 3], floats: [1, 2, 3, 4, 5, 6])], "no array \"0.bias\""),
        ([NPZArray(name: "0.weight", shape: [3, 2], floats: [1, 2, 3, 4, 5, 6]), NPZArray(name: "0.bias", shape: [2], floats: [0, 0])],
         "\"0.weight\" has shape [3, 2], the model needs [2, 3]"),
        ([NPZArray(name: "0.weight", shape: [2, 3], floats: [1, 2, 3, 4, 5, 6]), NPZArray(name: "0.bias", shape: [2], floats: [0, 0]),
          NPZArray(name: "fc.weight", shape: [1], floats: [0])], "array \"fc.weight\" the model does not have"),
        ([NPZArray(name: "0.weight", shape: [2, 3], floats: [1, .nan, 3, 4, 5, 6]), NPZArray(name: "0.bias", shape: [2], floats: [0, 0])],
         "NaN"),
    ])
    func refusesMismatches(_ arrays: [NPZArray], _ fragment: String) throws {
        let path = try write(arrays)
        do {
            _ = try loadWeights(path, layout: layout)
            Issue.record("accepted \(arrays.map(\.name))")
        } catch let e as ModelSpecError {
            #expect("\(e)".contains(fragment), "\(e)")
        }
    }

    @Test func specFileErrorsNameTheFile() throws {
        #expect(throws: ModelSpecError.self) { try ModelSelection(specFile: "/nonexistent/net.json") }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("s-\(UUID().uuidString).json").path
        try Data(#"[{"type": "flatten"}, {"type": "linear", "out_features": 4}]"#.utf8).write(to: URL(fileURLWithPath: path))
        let s = try ModelSelection(specFile: path)
        let m = try s.build(input: .image(channels: 1, height: 2, width: 3), classes: 4, seed: 1, threads: 1)
        #expect(m.layout.map(\.name) == ["1.weight", "1.bias"])
        #expect(s.label.hasPrefix("spec s-"))
        #expect(throws: ModelSpecError.wrongOutput(got: "4", classes: 3)) {
            _ = try s.build(input: .image(channels: 1, height: 2, width: 3), classes: 3, seed: 1, threads: 1)
        }
    }

    @Test func fingerprintsFollowTheLayout() throws {
        let a = modelFingerprint(label: "cnn4", layout: layout)
        #expect(a.hasPrefix("cnn4|") && a.count == 5 + 16)
        #expect(modelFingerprint(label: "x", layout: layout).hasSuffix(String(a.suffix(16))))
        #expect(modelFingerprint(label: "cnn4", layout: [("0.weight", [3, 2]), ("0.bias", [2])]) != a)
    }
}
