// The JSON form of a NetworkSpec (`--model-spec net.json`): a list of objects with a "type" and
// PyTorch's constructor argument names; README ("Models") documents every field.
//
//   [{"type": "conv2d", "out_channels": 6, "kernel_size": 5, "padding": 2}, {"type": "relu"},
//    {"type": "maxpool2d", "kernel_size": 2}, {"type": "flatten"}, {"type": "linear", "out_features": 10}]
//
// Optional on every layer: "name" (replaces the index in parameter names). Optional checks:
// "in_channels" (conv2d), "in_features" (linear). A residual block: {"type": "residual",
// "body": [...], "shortcut": [...]} (shortcut optional: identity).
import Foundation

extension NetworkSpec {
    /// Parses the JSON form; errors name the layer path ("3", "2.body.1") and the field.
    public init(json data: Data) throws {
        let root: Any
        do { root = try JSONSerialization.jsonObject(with: data) } catch {
            throw ModelSpecError.malformed("not valid JSON (\(error.localizedDescription))")
        }
        let list: Any = (root as? [String: Any])?["layers"] ?? root
        guard let layers = list as? [Any] else { throw ModelSpecError.malformed("the top level is not a list") }
        self.init(layers: try parseList(layers, prefix: ""))
    }

    /// The JSON form (round-trips through `init(json:)`).
    public func jsonData() throws -> Data {
        try JSONSerialization.data(withJSONObject: layers.map(jsonObject), options: [.prettyPrinted, .sortedKeys])
    }
}

private func parseList(_ list: [Any], prefix: String) throws -> [NamedLayer] {
    try list.enumerated().map { i, item in try parseLayer(item, path: prefix + String(i)) }
}

private func parseLayer(_ item: Any, path: String) throws -> NamedLayer {
    guard let o = item as? [String: Any] else {
        throw ModelSpecError.malformed("layer \(path) is not an object with a \"type\"")
    }
    guard let type = o["type"] as? String else {
        throw ModelSpecError.badField(layer: path, field: "type", why: "is missing or not a string")
    }
    func int(_ key: String, _ fallback: Int? = nil) throws -> Int {
        guard let v = o[key] else {
            if let fallback { return fallback }
            throw ModelSpecError.badField(layer: path, field: key, why: "is missing")
        }
        guard !isBool(v), let n = v as? NSNumber, let i = Int(exactly: n.doubleValue) else {
            throw ModelSpecError.badField(layer: path, field: key, why: "must be an integer, got \(v)")
        }
        return i
    }
    func optInt(_ key: String) throws -> Int? { o[key] == nil ? nil : try int(key) }
    func double(_ key: String, _ fallback: Double) throws -> Double {
        guard let v = o[key] else { return fallback }
        guard !isBool(v), let n = v as? NSNumber else {
            throw ModelSpecError.badField(layer: path, field: key, why: "must be a number, got \(v)")
        }
        return n.doubleValue
    }
    func list(_ key: String, required: Bool) throws -> [NamedLayer] {
        guard let v = o[key] else {
            if required { throw ModelSpecError.badField(layer: path, field: key, why: "is missing") }
            return []
        }
        guard let l = v as? [Any] else { throw ModelSpecError.badField(layer: path, field: key, why: "must be a list of layers") }
        return try parseList(l, prefix: "\(path).\(key).")
    }
    let name = o["name"] as? String
    if let name, name.isEmpty || name.contains(".") {
        throw ModelSpecError.badField(layer: path, field: "name", why: "must be non-empty without dots, got \"\(name)\"")
    }
    let layer: LayerSpec
    switch type {
    case "conv2d":
        let k = try int("kernel_size")
        layer = .conv2d(outChannels: try int("out_channels"), kernel: k, stride: try int("stride", 1),
                        padding: try int("padding", 0), inChannels: try optInt("in_channels"))
    case "maxpool2d", "avgpool2d":
        let k = try int("kernel_size")
        let s = try int("stride", k), p = try int("padding", 0)
        layer = type == "maxpool2d" ? .maxPool2d(kernel: k, stride: s, padding: p) : .avgPool2d(kernel: k, stride: s, padding: p)
    case "global_avgpool": layer = .globalAvgPool
    case "relu": layer = .relu
    case "flatten": layer = .flatten
    case "linear": layer = .linear(outFeatures: try int("out_features"), inFeatures: try optInt("in_features"))
    case "dropout": layer = .dropout(p: try double("p", 0.5))
    case "groupnorm": layer = .groupNorm(groups: try int("num_groups"), eps: try double("eps", 1e-5))
    case "residual": layer = .residual(body: try list("body", required: true), shortcut: try list("shortcut", required: false))
    default: throw ModelSpecError.unknownLayer(layer: path, type: type)
    }
    return NamedLayer(layer, name: name)
}

private func jsonObject(_ n: NamedLayer) -> [String: Any] {
    var o: [String: Any] = ["type": n.layer.typeName]
    if let name = n.name { o["name"] = name }
    switch n.layer {
    case let .conv2d(outC, k, s, p, inC):
        o["out_channels"] = outC; o["kernel_size"] = k; o["stride"] = s; o["padding"] = p
        if let inC { o["in_channels"] = inC }
    case let .maxPool2d(k, s, p), let .avgPool2d(k, s, p):
        o["kernel_size"] = k; o["stride"] = s; o["padding"] = p
    case .globalAvgPool, .relu, .flatten: break
    case let .linear(outF, inF):
        o["out_features"] = outF
        if let inF { o["in_features"] = inF }
    case let .dropout(p): o["p"] = p
    case let .groupNorm(g, eps): o["num_groups"] = g; o["eps"] = eps
    case let .residual(b, sc):
        o["body"] = b.map(jsonObject)
        if !sc.isEmpty { o["shortcut"] = sc.map(jsonObject) }
    }
    return o
}

/// JSON true/false (Foundation on Linux bridges 0/1 numbers to Bool in `is` checks, so ask the
/// dynamic type instead).
private func isBool(_ v: Any) -> Bool { type(of: v) == Bool.self || String(describing: type(of: v)).hasSuffix("Boolean") }
