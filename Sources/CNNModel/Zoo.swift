// The model zoo: named networks as NetworkSpecs (data, not code paths).
//   cnn4    the reference CNN (default): 4 × [conv3x3 pad 1 → ReLU → maxpool 2], linear; names
//           conv1..conv4, fc as before this zoo existed.
//   lenet5  kubeFlower's network (hpn-bristol/kubeFlower src/client.py `Net`): conv5x5(6) → ReLU →
//           maxpool 2 → conv5x5(16) → ReLU → maxpool 2 → fc1 120 → ReLU → fc2 84 → ReLU → fc3;
//           names conv1, conv2, fc1, fc2, fc3 as its state_dict.
//   mlp     flatten → [linear(h) → ReLU]* → linear(classes) (hidden sizes from `--hidden`).
//   resnet8 conv3x3(16) → GN → ReLU → 3 residual stages (16, 32/2, 64/2; body conv-GN-ReLU-conv-GN,
//           1x1 stride-2 conv + GN shortcut when the shape changes, ReLU after each add)
//           → global average pool → flatten → linear. GroupNorm with 8 channels per group.

/// Names and builders of the zoo's networks.
public enum Zoo {
    /// The names `--model` accepts.
    public static let names = ["cnn4", "lenet5", "mlp", "resnet8"]

    /// The spec of zoo model `name` for inputs of `input` shape and `classes` outputs; `hidden`
    /// sets the MLP's hidden sizes (ignored by the others).
    public static func spec(_ name: String, input: TensorShape, classes: Int, hidden: [Int] = [256, 128]) throws -> NetworkSpec {
        switch name {
        case "cnn4": return cnn4(classes: classes)
        case "lenet5": return lenet5(classes: classes)
        case "mlp": return mlp(hidden: hidden, classes: classes)
        case "resnet8": return resnet8(classes: classes)
        default: throw ModelSpecError.unknownModel(name)
        }
    }

    /// The reference CNN.
    public static func cnn4(classes: Int) -> NetworkSpec {
        var layers: [NamedLayer] = []
        for (i, c) in [32, 64, 128, 256].enumerated() {
            layers.append(NamedLayer(.conv2d(outChannels: c, kernel: 3, stride: 1, padding: 1, inChannels: nil), name: "conv\(i + 1)"))
            layers.append(NamedLayer(.relu))
            layers.append(NamedLayer(.maxPool2d(kernel: 2, stride: 2, padding: 0)))
        }
        layers.append(NamedLayer(.flatten))
        layers.append(NamedLayer(.linear(outFeatures: classes, inFeatures: nil), name: "fc"))
        return NetworkSpec(layers: layers)
    }

    /// kubeFlower's LeNet-5 variant.
    public static func lenet5(classes: Int) -> NetworkSpec {
        NetworkSpec(layers: [
            NamedLayer(.conv2d(outChannels: 6, kernel: 5, stride: 1, padding: 0, inChannels: nil), name: "conv1"),
            NamedLayer(.relu), NamedLayer(.maxPool2d(kernel: 2, stride: 2, padding: 0)),
            NamedLayer(.conv2d(outChannels: 16, kernel: 5, stride: 1, padding: 0, inChannels: nil), name: "conv2"),
            NamedLayer(.relu), NamedLayer(.maxPool2d(kernel: 2, stride: 2, padding: 0)),
            NamedLayer(.flatten),
            NamedLayer(.linear(outFeatures: 120, inFeatures: nil), name: "fc1"), NamedLayer(.relu),
            NamedLayer(.linear(outFeatures: 84, inFeatures: nil), name: "fc2"), NamedLayer(.relu),
            NamedLayer(.linear(outFeatures: classes, inFeatures: nil), name: "fc3"),
        ])
    }

    /// A multilayer perceptron with ReLU between the layers (nn.Sequential names 1, 3, ...).
    public static func mlp(hidden: [Int], classes: Int) -> NetworkSpec {
        var layers = [NamedLayer(.flatten)]
        for h in hidden { layers += [NamedLayer(.linear(outFeatures: h, inFeatures: nil)), NamedLayer(.relu)] }
        layers.append(NamedLayer(.linear(outFeatures: classes, inFeatures: nil)))
        return NetworkSpec(layers: layers)
    }

    /// A CIFAR-style ResNet-8 with GroupNorm (8 layers with weights on the main path).
    public static func resnet8(classes: Int) -> NetworkSpec {
        func conv(_ c: Int, _ k: Int, _ s: Int) -> NamedLayer {
            NamedLayer(.conv2d(outChannels: c, kernel: k, stride: s, padding: k / 2, inChannels: nil))
        }
        func gn(_ c: Int) -> NamedLayer { NamedLayer(.groupNorm(groups: groups(c), eps: 1e-5)) }
        var layers = [conv(16, 3, 1), gn(16), NamedLayer(.relu)]
        var cin = 16
        for (c, s) in [(16, 1), (32, 2), (64, 2)] {
            let body = [conv(c, 3, s), gn(c), NamedLayer(.relu), conv(c, 3, 1), gn(c)]
            let shortcut = (s == 1 && c == cin) ? [] : [conv(c, 1, s), gn(c)]
            layers += [NamedLayer(.residual(body: body, shortcut: shortcut)), NamedLayer(.relu)]
            cin = c
        }
        layers += [NamedLayer(.globalAvgPool), NamedLayer(.flatten), NamedLayer(.linear(outFeatures: classes, inFeatures: nil))]
        return NetworkSpec(layers: layers)
    }

    /// GroupNorm groups for `c` channels: 8 channels per group (at least 1 group).
    static func groups(_ c: Int) -> Int { max(1, c / 8) }
}
