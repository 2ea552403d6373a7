// CNNError: the one error type of CNNModel.

/// Errors from building, training or evaluating a CNN; each names the bad value and the fix.
public enum CNNError: Error, CustomStringConvertible, Equatable {
    /// The input is too small for four 2×2 poolings (each dimension must be >= 16).
    case inputTooSmall(channels: Int, height: Int, width: Int)
    /// A size argument is zero or negative.
    case invalidArgument(name: String, value: Int)
    /// The flat parameter array has the wrong length.
    case parameterCountMismatch(expected: Int, got: Int)
    /// The image buffer does not hold a whole number of images matching the labels.
    case imageCountMismatch(expectedFloats: Int, gotFloats: Int)
    /// A label outside 0..<classes.
    case labelOutOfRange(index: Int, label: Int32, classes: Int)
    /// A learning rate, momentum or weight decay that is negative or not finite.
    case invalidHyperparameter(name: String, value: Float)
    /// A DP-SGD setting out of range (clip norm, noise multiplier, sampling rate).
    case invalidDPSGDSetting(name: String, value: Double, expected: String)

    /// Human-readable description with a remedy.
    public var description: String {
        switch self {
        case let .inputTooSmall(c, h, w):
            return "input \(c)x\(h)x\(w) is too small for four 2x2 poolings; height and width must be >= 16 "
                + "(resize or pad the images)"
        case let .invalidArgument(name, value):
            return "\(name) = \(value) must be positive"
        case let .parameterCountMismatch(expected, got):
            return "parameter array has \(got) floats but this model expects \(expected); "
                + "send parameters from a model with the same input shape and classes"
        case let .imageCountMismatch(expected, got):
            return "image buffer holds \(got) floats but the labels/count need \(expected) (N*C*H*W, NCHW); "
                + "pass one C*H*W image per label"
        case let .labelOutOfRange(index, label, classes):
            return "label \(label) at index \(index) is outside 0..<\(classes); fix the dataset or the class count"
        case let .invalidHyperparameter(name, value):
            return "\(name) = \(value) must be finite and >= 0"
        case let .invalidDPSGDSetting(name, value, expected):
            return "DP-SGD \(name) = \(value) must be \(expected)"
        }
    }
}

/// Errors in a network spec (`--model-spec`, the zoo) or in weights loaded for one; each names
/// the layer (its path in the spec, e.g. "3" or "2.body.0") or the tensor.
public enum ModelSpecError: Error, CustomStringConvertible, Equatable {
    /// The JSON is not a list of layer objects.
    case malformed(String)
    /// A layer "type" this version does not know.
    case unknownLayer(layer: String, type: String)
    /// A layer field is missing, has the wrong type, or is out of range.
    case badField(layer: String, field: String, why: String)
    /// The layer does not accept the shape it receives (or produces an empty one).
    case inconsistentShape(layer: String, input: String, why: String)
    /// The network's output is not a vector of `classes` logits.
    case wrongOutput(got: String, classes: Int)
    /// No zoo model has this name.
    case unknownModel(String)
    /// Weights whose names or shapes differ from the model's layout.
    case weightsMismatch(String)

    /// Human-readable description with a remedy.
    public var description: String {
        switch self {
        case let .malformed(why):
            return "model spec: \(why); a spec is a JSON list of layer objects such as "
                + #"[{"type": "flatten"}, {"type": "linear", "out_features": 10}] (README, "Models")"#
        case let .unknownLayer(layer, type):
            return "model spec layer \(layer): unknown type \"\(type)\"; known types: conv2d, maxpool2d, avgpool2d, "
                + "global_avgpool, relu, flatten, linear, dropout, groupnorm, residual"
        case let .badField(layer, field, why):
            return "model spec layer \(layer): \"\(field)\" \(why)"
        case let .inconsistentShape(layer, input, why):
            return "model spec layer \(layer): input \(input): \(why)"
        case let .wrongOutput(got, classes):
            return "the network ends with output \(got) but the dataset has \(classes) classes; "
                + "end the spec with a linear layer of out_features \(classes)"
        case let .unknownModel(name):
            return "unknown model \"\(name)\"; choose one of cnn4, lenet5, mlp, resnet8 or pass --model-spec FILE"
        case let .weightsMismatch(why):
            return "weights do not fit the model: \(why); use weights saved from the same --model/--model-spec and dataset"
        }
    }
}
