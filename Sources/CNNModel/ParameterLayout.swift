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

