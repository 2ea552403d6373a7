// `flwr export --format onnx` end to end on real data: `flwr train` trains cnn4 and a JSON-spec
// network briefly on Fashion-MNIST, `flwr export` writes ONNX, and onnxruntime (a peer nobody
// here wrote) gets our own logits within 1e-4 on 500 real test images; onnx.checker accepts the files.
import TestSupport
import CIFARLoader
import CNNModel
import FlowerLearning
import Foundation
import XCTest

final class ONNXExportReleaseTests: XCTestCase {
    override func setUpWithError() throws {
        #if DEBUG
        throw XCTSkip("release-only: run swift test -c release --filter ReleaseTests")
        #endif
        guard FileManager.default.fileExists(atPath: "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz") else {
            throw XCTSkip("Fashion-MNIST not installed: run scripts/bootstrap")
        }
    }

    /// The flwr binary built beside this test bundle (scripts/test builds it first).
    private func flwr(_ arguments: [String]) throws -> String {
        let dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        guard let binary = [dir, dir.deletingLastPathComponent()].map({ $0.appendingPathComponent("flwr").path })
            .first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw XCTSkip("no flwr binary beside \(dir.path); run swift build -c release --product flwr first")
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = arguments
        let pipe = Pipe()
        p.standardOutput = pipe; p.standardError = pipe
        try p.run()
        let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0, "flwr \(arguments.joined(separator: " ")):\n\(out)")
        return out
    }

    func testCNN4ExportMatchesOurLogitsInOnnxruntime() throws {
        try check(model: ["--model", "cnn4"], selection: try ModelSelection(zoo: "cnn4"))
    }

    /// A spec with GroupNorm, a residual block, both pools and dropout.
    func testSpecNetworkExportMatchesOurLogitsInOnnxruntime() throws {
        let dir = try temporaryFolder()
        let json = """
            [{"type": "conv2d", "out_channels": 8, "kernel_size": 5, "padding": 2},
             {"type": "groupnorm", "num_groups": 2}, {"type": "relu"},
             {"type": "maxpool2d", "kernel_size": 2},
             {"type": "residual", "body": [{"type": "conv2d", "out_channels": 8, "kernel_size": 5, "padding": 2},
                                           {"type": "groupnorm", "num_groups": 4}]},
             {"type": "relu"}, {"type": "avgpool2d", "kernel_size": 2}, {"type": "dropout", "p": 0.25},
             {"type": "flatten"}, {"type": "linear", "out_features": 32, "name": "hidden"}, {"type": "relu"},
             {"type": "linear", "out_features": 10, "name": "head"}]
            """
        try json.write(toFile: dir + "/net.json", atomically: true, encoding: .utf8)
        try check(model: ["--model-spec", dir + "/net.json"], selection: try ModelSelection(specFile: dir + "/net.json"))
    }

    /// A CSV end to end: `flwr simulate --model mlp --dataset csv` (string labels, header, Dirichlet
    /// split) learns, `flwr export --input 5` writes an [N, 5] model, and onnxruntime gives our
    /// logits on the held-out rows.
    func testTabularMLPFederatedThenExported() throws {
        let dir = try temporaryFolder()
        _ = try runPython("""
            import numpy as np
            rng = np.random.default_rng(3)
            names = np.array(['setosa', 'versicolor', 'virginica'])
            y = rng.integers(0, 3, 600)
            x = rng.normal(size=(600, 5)) + np.eye(3, 5)[y] * 3 + np.array([10, -4, 0.5, 100, 7])
            with open('\(dir)/data.csv', 'w') as f:
                f.write('f0,f1,species,f2,f3,f4\\n')
                for row, label in zip(x, names[y]):
                    f.write(','.join([f'{row[0]:.5f}', f'{row[1]:.5f}', label] + [f'{v:.5f}' for v in row[2:]]) + '\\n')
            """, self)
        let data = ["--dataset", "csv", "--data-file", dir + "/data.csv", "--label-column", "species"]
        let model = ["--model", "mlp", "--hidden", "16"]
        _ = try flwr(["simulate"] + model + data + ["--clients", "3", "--alpha", "1", "--rounds", "5", "--epochs", "2", "--lr", "0.05",
                                                    "--out", dir + "/run"])
        let history = try String(contentsOfFile: dir + "/run/history.jsonl", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(history.count, 5)
        let last = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(history.last!.utf8)) as? [String: Any])
        XCTAssertGreaterThan(try XCTUnwrap(last["accuracy"] as? Double), 0.85, "three well separated classes (chance 0.33): \(last)")
        _ = try flwr(["export"] + model + ["--input", "5", "--classes", "3", "--weights", dir + "/run/model.npz",
                                           "--out", dir + "/model.onnx"])
        let test = try loadDataset(.csv, dataDir: nil, files: DataFiles(dataFile: dir + "/data.csv", labelColumn: "species")).test
        XCTAssertEqual(test.count, 120)
        let x = modelInput(test)
        let network = try ModelSelection(zoo: "mlp", hidden: [16]).build(input: modelInputShape(test), classes: 3, seed: 1, threads: 1)
        try network.setParameters(try loadWeights(dir + "/run/model.npz", layout: network.layout).values)
        let ours = try x.withUnsafeBufferPointer { try network.logits(images: $0, count: test.count) }
        try writeFloats(x, to: dir + "/x.bin"); try writeFloats(ours, to: dir + "/ours.bin")
        let out = try runPython("""
            import numpy as np, onnx, onnxruntime as ort
            m = onnx.load('\(dir)/model.onnx'); onnx.checker.check_model(m, full_check=True)
            x = np.fromfile('\(dir)/x.bin', dtype=np.float32).reshape(120, 5)
            ours = np.fromfile('\(dir)/ours.bin', dtype=np.float32).reshape(120, 3)
            got = ort.InferenceSession('\(dir)/model.onnx', providers=['CPUExecutionProvider']).run(['logits'], {'input': x})[0]
            print(float(np.abs(got - ours).max()))
            """, self)
        XCTAssertLessThan(try XCTUnwrap(Double(out), "python printed: \(out)"), 1e-4)
    }

    private func check(model: [String], selection: ModelSelection) throws {
        let dir = try temporaryFolder()
        _ = try flwr(["train"] + model + ["--epochs", "1", "--max-train-examples", "2000", "--lr", "0.05",
                                          "--model-out", dir + "/model.npz", "--threads", "2"])
        let printed = try flwr(["export", "--format", "onnx"] + model + ["--weights", dir + "/model.npz",
                                                                       "--input", "1x28x28", "--classes", "10",
                                                                       "--out", dir + "/model.onnx"])
        XCTAssert(printed.contains("opset 17"), printed)

        // Our logits: the same weights in our Network on 500 real test images.
        let test = try loadDataset(.fashionMNIST, dataDir: nil).test.subset(Array(0 ..< 500))
        let x = modelInput(test)
        let network = try selection.build(input: modelInputShape(test), classes: 10, seed: 1, threads: 2)
        let weights = try loadWeights(dir + "/model.npz", layout: network.layout)
        try network.setParameters(weights.values)
        let ours = try x.withUnsafeBufferPointer { try network.logits(images: $0, count: test.count) }
        try writeFloats(x, to: dir + "/x.bin"); try writeFloats(ours, to: dir + "/ours.bin")
        let labels = test.labels.map { String($0) }.joined(separator: ",")
        let out = try runPython("""
            import numpy as np, onnx, onnxruntime as ort
            m = onnx.load('\(dir)/model.onnx')
            onnx.checker.check_model(m, full_check=True)
            x = np.fromfile('\(dir)/x.bin', dtype=np.float32).reshape(500, 1, 28, 28)
            ours = np.fromfile('\(dir)/ours.bin', dtype=np.float32).reshape(500, 10)
            got = ort.InferenceSession('\(dir)/model.onnx', providers=['CPUExecutionProvider']).run(['logits'], {'input': x})[0]
            acc = float((got.argmax(1) == np.array([\(labels)])).mean())
            print(float(np.abs(got - ours).max()), float(np.abs(ours).max()), acc)
            """, self)
        let v = out.split(separator: " ").compactMap { Double($0) }
        XCTAssertEqual(v.count, 3, "python printed: \(out)")
        guard v.count == 3 else { return }
        XCTAssertLessThan(v[0], 1e-4, "max |onnxruntime − ours| over 500×10 logits (max |logit| \(v[1]))")
        XCTAssertGreaterThan(v[2], 0.5, "the exported model classifies real test images (accuracy \(v[2]))")
        print("onnx export \(model.joined(separator: " ")): max |ort − ours| \(v[0]), max |logit| \(v[1]), ort accuracy \(v[2]) on 500 test images")
    }
}
