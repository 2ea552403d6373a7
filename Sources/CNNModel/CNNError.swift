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
        }
    }
}
