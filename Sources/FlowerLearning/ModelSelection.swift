// ModelSelection: which network a command builds (`--model NAME [--hidden ...]` or
// `--model-spec FILE`), and weights loaded for it (`--initial-model`), checked by name and shape.
import CIFARLoader
import CNNModel
import FlowerCore
import Foundation

/// A zoo model or a JSON spec, resolved against a dataset's shape when built.
public struct ModelSelection: Sendable, Equatable {
    /// Zoo name ("cnn4", ...) or nil when `spec` is set.
    public var name: String?
    /// A user spec (`--model-spec`).
    public var spec: NetworkSpec?
    /// Where the spec came from (for messages).
    public var specPath: String?
    /// Hidden layer sizes of the zoo's mlp.
    public var hidden: [Int]

    /// A zoo model.
    public init(zoo name: String, hidden: [Int] = [256, 128]) throws {
        guard Zoo.names.contains(name) else { throw ModelSpecError.unknownModel(name) }
        self.name = name; self.hidden = hidden
    }

    /// A spec read from a JSON file (see README "Models").
    public init(specFile path: String) throws {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw ModelSpecError.malformed("cannot read \(path) (\(error.localizedDescription))")
        }
        spec = try NetworkSpec(json: data)
        specPath = path
        hidden = []
    }

    /// The reference CNN.
    public static let reference = ModelSelection(uncheckedZoo: "cnn4")
    private init(uncheckedZoo name: String) { self.name = name; hidden = [256, 128] }

    /// A short label for logs and the server/client check: "cnn4", "mlp(256,128)", "spec net.json".
    public var label: String {
        if let name { return name == "mlp" ? "mlp(\(hidden.map(String.init).joined(separator: ",")))" : name }
        return "spec \((specPath as NSString?)?.lastPathComponent ?? "?")"
    }

    /// The spec for inputs of `input` shape and `classes` classes.
    public func networkSpec(input: TensorShape, classes: Int) throws -> NetworkSpec {
        if let spec { return spec }
        return try Zoo.spec(name ?? "cnn4", input: input, classes: classes, hidden: hidden)
    }

    /// Builds the network (parameters from `seed`).
    public func build(input: TensorShape, classes: Int, seed: UInt64, threads: Int) throws -> any Model {
        try Network(spec: try networkSpec(input: input, classes: classes), input: input, classes: classes, seed: seed,
                    threads: threads)
    }
}

/// The per-example input shape a dataset feeds a model: C×H×W images, or F tabular features.
public func modelInputShape(_ d: Dataset) -> TensorShape {
    if d.inputKind == .features { return .vector(d.featureCount) }
    return .image(channels: d.channels, height: d.height, width: d.width)
}

/// Reads `path` (.npz, one float array per tensor, e.g. from `--model-out` or PyTorch's
/// state_dict saved with numpy) and orders it by `layout`; every name must be present with the
/// same shape, and no extra arrays may be left over.
public func loadWeights(_ path: String, layout: [(name: String, shape: [Int])]) throws -> Parameters {
    let arrays = try NPZ.read(path)
    var byName: [String: NPZArray] = [:]
    for a in arrays { byName[a.name] = a }
    var values: [Float] = []
    for (name, shape) in layout {
        guard let a = byName.removeValue(forKey: name) else {
            throw ModelSpecError.weightsMismatch("\(path) has no array \"\(name)\" (it has \(arrays.map(\.name).sorted().joined(separator: ", ")))")
        }
        guard a.shape == shape else {
            throw ModelSpecError.weightsMismatch("\(path): \"\(name)\" has shape \(a.shape), the model needs \(shape)")
        }
        guard a.dtype == .float32 || a.dtype == .float64 else {
            throw ModelSpecError.weightsMismatch("\(path): \"\(name)\" is \(a.dtype.rawValue); save float32 arrays")
        }
        let f = a.floats()
        guard f.allSatisfy(\.isFinite) else { throw ModelSpecError.weightsMismatch("\(path): \"\(name)\" holds NaN or infinity") }
        values += f
    }
    if let extra = byName.keys.sorted().first {
        throw ModelSpecError.weightsMismatch("\(path) has an array \"\(extra)\" the model does not have")
    }
    return try Parameters(shapes: layout, values: values)
}

/// "<label>|<digest>": what server and client state at Hello/Welcome. The digest is FNV-1a 64
/// over every parameter's name and shape, so two models match when their layouts do.
public func modelFingerprint(label: String, layout: [(name: String, shape: [Int])]) -> String {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for (name, shape) in layout {
        for b in "\(name):\(shape.map(String.init).joined(separator: "x"));".utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
    }
    let hex = String(h, radix: 16)
    return "\(label)|\(String(repeating: "0", count: 16 - hex.count) + hex)"
}
