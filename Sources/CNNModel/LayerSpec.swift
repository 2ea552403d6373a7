// LayerSpec: a network as data. A `NetworkSpec` is a list of layers (`LayerSpec`, one layer kind's
// value: Layers/Layer.swift, one file per kind), read from JSON (`--model-spec net.json`) or built
// by the zoo (Zoo.swift); `resolve` checks it against an input shape and gives every layer its
// input/output shape and its parameters' PyTorch names.
//
// Naming follows PyTorch's nn.Sequential: layer i's parameters are "i.weight", "i.bias"; a layer
// with a "name" uses it instead of i (as nn.Sequential(OrderedDict(...)) does). A residual block
// at index i is a module with two nn.Sequential children, `body` and `shortcut` (empty = identity),
// so its parameters are "i.body.j.weight" and "i.shortcut.j.weight"; its forward is
// body(x) + shortcut(x). README ("Models") shows the PyTorch class that mirrors it.
//
// Activations are NCHW per example: a 4-D value is `.image(channels, height, width)`, a 2-D one
// `.vector(features)`.

/// Shape of one example flowing between layers.
public enum TensorShape: Equatable, Sendable, CustomStringConvertible {
    /// C×H×W (NCHW with the batch).
    case image(channels: Int, height: Int, width: Int)
    /// F features ([N, F] with the batch).
    case vector(Int)

    /// Floats per example.
    public var count: Int {
        switch self {
        case let .image(c, h, w): return c * h * w
        case let .vector(f): return f
        }
    }

    /// The PyTorch shape with the batch dimension first.
    public func withBatch(_ n: Int) -> [Int] {
        switch self {
        case let .image(c, h, w): return [n, c, h, w]
        case let .vector(f): return [n, f]
        }
    }

    /// "1x28x28" or "256".
    public var description: String {
        switch self {
        case let .image(c, h, w): return "\(c)x\(h)x\(w)"
        case let .vector(f): return "\(f)"
        }
    }
}

/// A layer and the optional name that replaces its index in parameter names.
public struct NamedLayer: Equatable, Sendable {
    /// The layer.
    public var layer: LayerSpec
    /// Module name ("conv1"); nil = its index in the enclosing list, as nn.Sequential names it.
    public var name: String?
    /// A layer named `name` (nil: by index).
    public init(_ layer: LayerSpec, name: String? = nil) { self.layer = layer; self.name = name }
}

/// A whole network: layers applied in order to one input; the last output is the logits.
public struct NetworkSpec: Equatable, Sendable {
    /// The layers, in order.
    public var layers: [NamedLayer]
    /// A network of `layers`.
    public init(layers: [NamedLayer]) { self.layers = layers }
}

/// One layer after `NetworkSpec.resolve`: where it sits, its shapes and its parameters.
public struct ResolvedLayer: Equatable, Sendable {
    /// Path in the spec, e.g. "3" or "2.body.0"; also the prefix of its parameter names.
    public var path: String
    /// The layer (for a residual block, its resolved children are in `body` and `shortcut`).
    public var spec: LayerSpec
    /// Shape of one input example.
    public var input: TensorShape
    /// Shape of one output example.
    public var output: TensorShape
    /// This layer's own parameters (names, shapes, offsets in the flat buffer), in PyTorch's order.
    public var parameters: [ParameterEntry]
    /// A residual block's resolved body (empty for other layers).
    public var body: [ResolvedLayer]
    /// A residual block's resolved shortcut (empty: identity, or not a residual block).
    public var shortcut: [ResolvedLayer]
}
