// The named, ordered layout of every parameter inside the one flat buffer.

/// One named tensor inside the flat parameter buffer.
public struct ParameterEntry: Sendable, Equatable {
    /// PyTorch-style name, e.g. "conv1.weight".
    public var name: String
    /// PyTorch shape, e.g. [32, 1, 3, 3].
    public var shape: [Int]
    /// First float of this tensor in the flat buffer.
    public var offset: Int
    /// Number of floats (product of shape).
    public var count: Int { shape.reduce(1, *) }
}

/// Output channels of the four convolutions.
let convChannels = [32, 64, 128, 256]

/// Builds the layout for a C×H×W input and K classes, in PyTorch's state_dict order:
/// conv1.weight [32,C,3,3], conv1.bias [32], ..., conv4.bias [256], fc.weight [K, 256*h*w], fc.bias [K]
/// where h = H/16, w = W/16 (floors after four 2×2 poolings).
func makeLayout(channels: Int, height: Int, width: Int, classes: Int) -> [ParameterEntry] {
    var entries: [ParameterEntry] = []
    var offset = 0
    func add(_ name: String, _ shape: [Int]) {
        entries.append(ParameterEntry(name: name, shape: shape, offset: offset))
        offset += shape.reduce(1, *)
    }
    var cin = channels
    for (i, cout) in convChannels.enumerated() {
        add("conv\(i + 1).weight", [cout, cin, 3, 3])
        add("conv\(i + 1).bias", [cout])
        cin = cout
    }
    let features = cin * (height / 16) * (width / 16)
    add("fc.weight", [classes, features])
    add("fc.bias", [classes])
    return entries
}
