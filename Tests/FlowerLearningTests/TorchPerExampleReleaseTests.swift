// DP-SGD's per-example gradients against PyTorch (a peer nobody here wrote): for every zoo model
// and a spec with every parameterised layer kind (strided and 1×1 convolutions, GroupNorm,
// residual shortcuts, linear), after a few training steps, on 32 real Fashion-MNIST test images,
// each example's gradient norm and the clipped sum Σᵢ min(1, C/‖gᵢ‖)·gᵢ match
// `torch.func.vmap(grad(...))` (scripts/torch_per_example.py) to float32 tolerance.
import CIFARLoader
import CNNModel
import FlowerCore
import FlowerLearning
import Foundation
import TestSupport
import XCTest

final class TorchPerExampleReleaseTests: XCTestCase {
    override func setUpWithError() throws {
        try requireReleaseBuild()
        try requireFashionMNIST()
        try requirePython(["torch", "numpy"])
    }

    static let residual = """
        [{"type": "conv2d", "out_channels": 8, "kernel_size": 3, "padding": 1}, {"type": "groupnorm", "num_groups": 2},
         {"type": "relu"},
         {"type": "residual", "body": [{"type": "conv2d", "out_channels": 16, "kernel_size": 3, "stride": 2, "padding": 1},
                                       {"type": "groupnorm", "num_groups": 4}, {"type": "relu"},
                                       {"type": "conv2d", "out_channels": 16, "kernel_size": 5, "padding": 2}],
          "shortcut": [{"type": "conv2d", "out_channels": 16, "kernel_size": 1, "stride": 2}]},
         {"type": "relu"}, {"type": "avgpool2d", "kernel_size": 2}, {"type": "maxpool2d", "kernel_size": 3, "stride": 2},
         {"type": "global_avgpool"}, {"type": "flatten"}, {"type": "linear", "out_features": 32}, {"type": "relu"},
         {"type": "linear", "out_features": 10}]
        """

    func testPerExampleGradientsMatchTorchFunc() throws {
        let split = try loadDataset(.fashionMNIST, dataDir: nil)
        let train = split.train.subset(Array(0..<128)), test = split.test.subset(Array(0..<32))
        let trainImages = modelInput(train), testImages = modelInput(test)
        let input = modelInputShape(test)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("flwr-torch-pe-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try NPZ.write([NPZArray(name: "images", shape: [32, 1, 28, 28], floats: testImages),
                       NPZArray(name: "labels", shape: [32], int64s: test.labels.map { Int64($0) })], to: "\(dir)/input.npz")
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("scripts/torch_per_example.py").path
        var selections: [(String, ModelSelection)] = try Zoo.names.map { ($0, try ModelSelection(zoo: $0, hidden: [64, 32])) }
        try Data(Self.residual.utf8).write(to: URL(fileURLWithPath: "\(dir)/residual.json"))
        selections.append(("residual spec", try ModelSelection(specFile: "\(dir)/residual.json")))
        for (name, selection) in selections {
            let model = try selection.build(input: input, classes: 10, seed: 3, threads: 2)
            _ = try trainImages.withUnsafeBufferPointer { x in
                try train.labels.withUnsafeBufferPointer { y in
                    try model.train(images: x, labels: y, epochs: 1, batchSize: 32, sgd: SGDConfig(learningRate: 0.05), seed: 4)
                }
            }
            // C at the median norm, so about half the examples are clipped.
            var norms = [Float](repeating: 0, count: 32)
            _ = testImages.withUnsafeBufferPointer { x in test.labels.withUnsafeBufferPointer { y in
                model.clippedGradientSum(x.baseAddress!, labels: y.baseAddress!, n: 32, maxGradNorm: .infinity, norms: &norms)
            } }
            let c = norms.sorted()[16]
            _ = testImages.withUnsafeBufferPointer { x in test.labels.withUnsafeBufferPointer { y in
                model.clippedGradientSum(x.baseAddress!, labels: y.baseAddress!, n: 32, maxGradNorm: c, norms: &norms)
            } }
            let ours = model.withGradients { Array($0) }
            let p = model.parameters()
            try NPZ.write(model.parameterEntries.map {
                NPZArray(name: $0.name, shape: $0.shape, floats: Array(p[$0.offset..<($0.offset + $0.count)]))
            }, to: "\(dir)/weights.npz")
            try selection.networkSpec(input: input, classes: 10).jsonData().write(to: URL(fileURLWithPath: "\(dir)/spec.json"))
            let run = try runProgram("/bin/sh", ["-c", "python3 \(script) \(dir)/spec.json \(dir)/weights.npz \(dir)/input.npz \(dir)/out.npz \(c)"])
            XCTAssertEqual(run.status, 0, "\(name): \(run.output)")
            guard run.status == 0 else { continue }
            let out = try NPZ.read("\(dir)/out.npz")
            let theirNorms = try XCTUnwrap(out.first { $0.name == "norms" }).floats()
            var worstNorm = 0.0
            for (i, (a, b)) in zip(norms, theirNorms).enumerated() {
                let rel = Double(abs(a - b)) / Double(max(b, 1e-12))
                worstNorm = max(worstNorm, rel)
                XCTAssertLessThanOrEqual(rel, 1e-4, "\(name) example \(i): norm \(a) vs torch.func \(b)")
            }
            var worst = (ratio: 0.0, entry: "")
            for e in model.parameterEntries {
                let theirs = try XCTUnwrap(out.first { $0.name == "clipped.\(e.name)" }, "\(name): no \(e.name)").floats()
                guard theirs.count == e.count else { XCTFail("\(name) \(e.name): \(theirs.count) values"); continue }
                let scale = Double(theirs.map { abs($0) }.max() ?? 0)
                let diff = Double(zip(ours[e.offset..<(e.offset + e.count)], theirs).map { abs($0 - $1) }.max() ?? 0)
                if diff / max(scale, 1e-12) > worst.ratio { worst = (diff / max(scale, 1e-12), e.name) }
                XCTAssertLessThanOrEqual(diff, 1e-4 * scale + 1e-7, "\(name) \(e.name): clipped sum differs by \(diff) (largest \(scale))")
            }
            print("\(name): C \(c); worst norm relative difference \(worstNorm); worst clipped-sum tensor \(worst.entry): "
                  + "\(worst.ratio) of its largest entry; \(run.output)")
        }
    }
}
