// Cross-check with PyTorch (a peer nobody here wrote): for every zoo model and a spec using every
// layer type, PyTorch builds the same nn.Sequential from our spec JSON (scripts/torch_spec.py),
// load_state_dict(strict=True) takes our .npz, and its logits on real Fashion-MNIST test images
// match ours within 1e-4. Weights are trained for a few steps first so they are not the init.
import CIFARLoader
import CNNModel
import FlowerCore
import FlowerLearning
import Foundation
import TestSupport
import XCTest

final class TorchCrossCheckReleaseTests: XCTestCase {
    override func setUpWithError() throws {
        try requireReleaseBuild()
        try requireFashionMNIST()
        try requirePython(["torch", "numpy"])
    }

    static let everyLayer = """
        [{"type": "conv2d", "out_channels": 8, "kernel_size": 3, "padding": 1, "name": "stem"}, {"type": "relu"},
         {"type": "maxpool2d", "kernel_size": 2},
         {"type": "residual", "body": [{"type": "conv2d", "out_channels": 16, "kernel_size": 3, "stride": 2, "padding": 1},
                                       {"type": "groupnorm", "num_groups": 4}, {"type": "relu"},
                                       {"type": "conv2d", "out_channels": 16, "kernel_size": 5, "padding": 2}],
          "shortcut": [{"type": "conv2d", "out_channels": 16, "kernel_size": 1, "stride": 2}]},
         {"type": "relu"}, {"type": "avgpool2d", "kernel_size": 3, "stride": 1, "padding": 1},
         {"type": "maxpool2d", "kernel_size": 3, "stride": 2}, {"type": "global_avgpool"}, {"type": "flatten"},
         {"type": "dropout", "p": 0.3}, {"type": "linear", "out_features": 32}, {"type": "relu"},
         {"type": "linear", "out_features": 10, "name": "head"}]
        """

    func testLogitsMatchPyTorchOnRealImages() throws {
        let split = try loadDataset(.fashionMNIST, dataDir: nil)
        let train = split.train.subset(Array(0..<256)), test = split.test.subset(Array(0..<64))
        let trainImages = modelInput(train), testImages = modelInput(test)
        let input = modelInputShape(test)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("flwr-torch-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try NPZ.write([NPZArray(name: "images", shape: [64, 1, 28, 28], floats: testImages)], to: "\(dir)/input.npz")
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("scripts/torch_spec.py").path

        var selections: [(String, ModelSelection)] = try Zoo.names.map { ($0, try ModelSelection(zoo: $0, hidden: [64, 32])) }
        try Data(Self.everyLayer.utf8).write(to: URL(fileURLWithPath: "\(dir)/every.json"))
        selections.append(("every layer", try ModelSelection(specFile: "\(dir)/every.json")))
        for (name, selection) in selections {
            let model = try selection.build(input: input, classes: 10, seed: 3, threads: 2)
            _ = try trainImages.withUnsafeBufferPointer { x in
                try train.labels.withUnsafeBufferPointer { y in
                    try model.train(images: x, labels: y, epochs: 1, batchSize: 32, sgd: SGDConfig(learningRate: 0.05), seed: 4)
                }
            }
            let ours = try testImages.withUnsafeBufferPointer { try model.logits(images: $0, count: 64) }
            let p = model.parameters()
            try NPZ.write(model.parameterEntries.map {
                NPZArray(name: $0.name, shape: $0.shape, floats: Array(p[$0.offset..<($0.offset + $0.count)]))
            }, to: "\(dir)/weights.npz")
            try selection.networkSpec(input: input, classes: 10).jsonData().write(to: URL(fileURLWithPath: "\(dir)/spec.json"))
            let run = try runProgram("/bin/sh", ["-c", "python3 \(script) \(dir)/spec.json \(dir)/weights.npz \(dir)/input.npz \(dir)/out.npz"])
            XCTAssertEqual(run.status, 0, "\(name): \(run.output)")
            guard run.status == 0 else { continue }
            let theirs = try XCTUnwrap(NPZ.read("\(dir)/out.npz").first { $0.name == "logits" }).floats()
            XCTAssertEqual(theirs.count, ours.count, name)
            let diff = zip(ours, theirs).map { abs($0 - $1) }.max() ?? .infinity
            print("\(name): \(model.parameterCount) parameters, max |ours - PyTorch| = \(diff) over 64x10 logits; \(run.output)")
            XCTAssertLessThanOrEqual(diff, 1e-4, "\(name): logits differ from PyTorch's by \(diff)")
        }
    }

    /// Backward passes against PyTorch's autograd: for every zoo model (resnet8 with its
    /// GroupNorm layers included, whose finite-difference check is ill-conditioned in float32) the
    /// gradient of the mean cross-entropy on 32 real test images, after a few training steps, is
    /// autograd's to 1e-4 of each tensor's largest entry.
    func testGradientsMatchPyTorchAutograd() throws {
        let split = try loadDataset(.fashionMNIST, dataDir: nil)
        let train = split.train.subset(Array(0..<128)), test = split.test.subset(Array(0..<32))
        let trainImages = modelInput(train), testImages = modelInput(test)
        let input = modelInputShape(test)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("flwr-torch-grad-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try NPZ.write([NPZArray(name: "images", shape: [32, 1, 28, 28], floats: testImages),
                       NPZArray(name: "labels", shape: [32], int64s: test.labels.map { Int64($0) })], to: "\(dir)/input.npz")
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("scripts/torch_spec.py").path
        for name in Zoo.names {
            let selection = try ModelSelection(zoo: name, hidden: [64, 32])
            let model = try selection.build(input: input, classes: 10, seed: 3, threads: 2)
            _ = try trainImages.withUnsafeBufferPointer { x in
                try train.labels.withUnsafeBufferPointer { y in
                    try model.train(images: x, labels: y, epochs: 1, batchSize: 32, sgd: SGDConfig(learningRate: 0.05), seed: 4)
                }
            }
            let p = model.parameters()
            try NPZ.write(model.parameterEntries.map {
                NPZArray(name: $0.name, shape: $0.shape, floats: Array(p[$0.offset..<($0.offset + $0.count)]))
            }, to: "\(dir)/weights.npz")
            let loss = testImages.withUnsafeBufferPointer { x in
                test.labels.withUnsafeBufferPointer { y in model.forwardBackward(x.baseAddress!, labels: y.baseAddress!, n: 32) }
            }
            let ours = model.withGradients { Array($0) }
            try selection.networkSpec(input: input, classes: 10).jsonData().write(to: URL(fileURLWithPath: "\(dir)/spec.json"))
            let run = try runProgram("/bin/sh", ["-c", "python3 \(script) \(dir)/spec.json \(dir)/weights.npz \(dir)/input.npz \(dir)/out.npz"])
            XCTAssertEqual(run.status, 0, "\(name): \(run.output)")
            guard run.status == 0 else { continue }
            let out = try NPZ.read("\(dir)/out.npz")
            let theirLoss = try XCTUnwrap(out.first { $0.name == "loss" }).floats()[0]
            XCTAssertEqual(loss, Double(theirLoss), accuracy: 1e-4 * max(1, abs(loss)), "\(name): loss")
            var worst = (ratio: 0.0, entry: "")
            for e in model.parameterEntries {
                let theirs = try XCTUnwrap(out.first { $0.name == "grad.\(e.name)" }, "\(name): no gradient for \(e.name)").floats()
                XCTAssertEqual(theirs.count, e.count, "\(name) \(e.name)")
                guard theirs.count == e.count else { continue }
                let scale = Double(theirs.map { abs($0) }.max() ?? 0)
                let diff = Double(zip(ours[e.offset..<(e.offset + e.count)], theirs).map { abs($0 - $1) }.max() ?? 0)
                let ratio = diff / max(scale, 1e-12)
                if ratio > worst.ratio { worst = (ratio, e.name) }
                XCTAssertLessThanOrEqual(diff, 1e-4 * scale + 1e-7,
                                         "\(name) \(e.name): gradient differs from autograd's by \(diff) (largest entry \(scale))")
            }
            print("\(name): loss \(loss) vs \(theirLoss); worst gradient tensor \(worst.entry): max |ours - autograd| = \(worst.ratio) of its largest entry; \(run.output)")
        }
    }
}
