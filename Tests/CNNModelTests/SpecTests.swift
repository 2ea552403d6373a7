import Foundation
import Testing
@testable import CNNModel

/// The JSON spec: parsing, PyTorch nn.Sequential names, the zoo's layouts, and each bad input's
/// error naming the layer.
struct SpecTests {
    static let readmeSpec = """
        [{"type": "conv2d", "out_channels": 8, "kernel_size": 3, "padding": 1}, {"type": "relu"},
         {"type": "maxpool2d", "kernel_size": 2},
         {"type": "residual", "body": [{"type": "conv2d", "out_channels": 8, "kernel_size": 3, "padding": 1},
                                       {"type": "groupnorm", "num_groups": 2}, {"type": "relu"},
                                       {"type": "conv2d", "out_channels": 8, "kernel_size": 3, "padding": 1}]},
         {"type": "relu"}, {"type": "global_avgpool"}, {"type": "flatten"}, {"type": "dropout", "p": 0.2},
         {"type": "linear", "out_features": 10, "name": "fc"}]
        """

    @Test func namesFollowNNSequentialAndRoundTrip() throws {
        let spec = try NetworkSpec(json: Data(Self.readmeSpec.utf8))
        let layers = try spec.resolve(input: .image(channels: 1, height: 28, width: 28), classes: 10)
        let entries = NetworkSpec.parameterEntries(layers)
        #expect(entries.map(\.name) == ["0.weight", "0.bias", "3.body.0.weight", "3.body.0.bias", "3.body.1.weight",
                                        "3.body.1.bias", "3.body.3.weight", "3.body.3.bias", "fc.weight", "fc.bias"])
        #expect(entries.map(\.shape) == [[8, 1, 3, 3], [8], [8, 8, 3, 3], [8], [8], [8], [8, 8, 3, 3], [8], [10, 8], [10]])
        #expect(layers[3].output == .image(channels: 8, height: 14, width: 14))
        var offset = 0
        for e in entries { #expect(e.offset == offset); offset += e.count }
        #expect(try NetworkSpec(json: try spec.jsonData()) == spec)
    }

    @Test func zooLayouts() throws {
        let mnist = TensorShape.image(channels: 1, height: 28, width: 28), cifar = TensorShape.image(channels: 3, height: 32, width: 32)
        func count(_ s: NetworkSpec, _ input: TensorShape) throws -> Int {
            NetworkSpec.parameterEntries(try s.resolve(input: input, classes: 10)).reduce(0) { $0 + $1.count }
        }
        #expect(try count(Zoo.cnn4(classes: 10), mnist) == 390_410)
        #expect(try count(Zoo.cnn4(classes: 10), cifar) == 398_666)
        // kubeFlower's Net on CIFAR-10: PyTorch reports 62,006 parameters; on 1x28x28 fc1 sees 16*4*4.
        #expect(try count(Zoo.lenet5(classes: 10), cifar) == 62_006)
        #expect(try count(Zoo.lenet5(classes: 10), mnist) == 44_426)
        #expect(try count(Zoo.mlp(hidden: [256, 128], classes: 10), mnist) == 784 * 256 + 256 + 256 * 128 + 128 + 1290)
        #expect(try count(Zoo.resnet8(classes: 10), mnist) == 78_090)
        #expect(try count(Zoo.resnet8(classes: 10), cifar) == 78_378)
        let lenet = NetworkSpec.parameterEntries(try Zoo.lenet5(classes: 10).resolve(input: cifar, classes: 10))
        #expect(lenet.map(\.name) == ["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "fc1.weight", "fc1.bias",
                                      "fc2.weight", "fc2.bias", "fc3.weight", "fc3.bias"])
        let resnet = NetworkSpec.parameterEntries(try Zoo.resnet8(classes: 10).resolve(input: cifar, classes: 10))
        #expect(resnet.first { $0.name == "5.shortcut.0.weight" }?.shape == [32, 16, 1, 1])
        #expect(resnet.first { $0.name == "3.body.1.weight" }?.shape == [16])
        #expect(resnet.filter { $0.name.hasSuffix("weight") && $0.shape.count == 4 }.count == 9)  // 7 3x3 + 2 shortcut 1x1
    }

    static let bad: [(String, String, ModelSpecError)] = [
        (#"[{"type": "flatten"}, {"type": "conv3d"}]"#, "unknown layer", .unknownLayer(layer: "1", type: "conv3d")),
        (#"[{"type": "conv2d", "out_channels": 4, "kernel_size": 3}, {"type": "linear", "out_features": 10}]"#, "linear after conv",
         .inconsistentShape(layer: "1", input: "4x26x26", why: #"linear needs a vector input; add {"type": "flatten"} before it"#)),
        (#"[{"type": "conv2d", "out_channels": 0, "kernel_size": 3}]"#, "zero channels",
         .badField(layer: "0", field: "out_channels", why: "must be >= 1, got 0")),
        (#"[{"type": "conv2d", "in_channels": 3, "out_channels": 4, "kernel_size": 3}]"#, "in_channels",
         .inconsistentShape(layer: "0", input: "1x28x28", why: "in_channels is 3 but the input has 1 channels")),
        (#"[{"type": "maxpool2d", "kernel_size": 2}, {"type": "maxpool2d", "kernel_size": 2}, {"type": "maxpool2d", "kernel_size": 2}, {"type": "maxpool2d", "kernel_size": 2}, {"type": "maxpool2d", "kernel_size": 2}]"#,
         "zero-sized", .inconsistentShape(layer: "4", input: "1x1x1", why: "pool window of 2 with padding 0 gives a zero-sized output; use a smaller kernel or more padding")),
        (#"[{"type": "residual", "body": [{"type": "conv2d", "out_channels": 4, "kernel_size": 1}]}]"#, "residual shapes",
         .inconsistentShape(layer: "0", input: "1x28x28", why: "the body gives 4x28x28 but the shortcut gives 1x28x28; add a shortcut (e.g. a 1x1 conv2d with the body's stride) that matches")),
        (#"[{"type": "flatten"}, {"type": "linear", "out_features": 7}]"#, "classes", .wrongOutput(got: "7", classes: 10)),
        (#"[{"type": "linear"}]"#, "missing field", .badField(layer: "0", field: "out_features", why: "is missing")),
        (#"{"layer": 1}"#, "not a list", .malformed("the top level is not a list")),
    ]

    @Test(arguments: 0..<bad.count)
    func badSpecsNameTheLayer(_ i: Int) throws {
        let (json, what, expected) = Self.bad[i]
        #expect(throws: expected, "\(what)") {
            let spec = try NetworkSpec(json: Data(json.utf8))
            _ = try spec.resolve(input: .image(channels: 1, height: 28, width: 28), classes: 10)
        }
    }

    @Test func unknownZooName() {
        #expect(throws: ModelSpecError.unknownModel("vgg16")) { try Zoo.spec("vgg16", input: .vector(3), classes: 2) }
    }
}
