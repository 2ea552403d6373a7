// The JSON form of a NetworkSpec (`--model-spec net.json`): a list of objects with a "type" and
// PyTorch's constructor argument names; README ("Models") documents every field, and each layer
// kind reads and writes its own (Layers/<Kind>.swift).
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
        self.init(layers: try parseLayerList(layers, prefix: ""))
    }

    /// The JSON form (round-trips through `init(json:)`).
    public func jsonData() throws -> Data {
        try JSONSerialization.data(withJSONObject: layers.map(layerJSONObject), options: [.prettyPrinted, .sortedKeys])
    }
}

func parseLayerList(_ list: [Any], prefix: String) throws -> [NamedLayer] {
    try list.enumerated().map { i, item in try parseLayer(item, path: prefix + String(i)) }
}

/// One layer object: its "name", and the kind its "type" names (`layerKinds`) reads the rest.
private func parseLayer(_ item: Any, path: String) throws -> NamedLayer {
    guard let o = item as? [String: Any] else {
        throw ModelSpecError.malformed("layer \(path) is not an object with a \"type\"")
    }
    guard let type = o["type"] as? String else {
        throw ModelSpecError.badField(layer: path, field: "type", why: "is missing or not a string")
    }
    let name = o["name"] as? String
    if let name, name.isEmpty || name.contains(".") {
        throw ModelSpecError.badField(layer: path, field: "name", why: "must be non-empty without dots, got \"\(name)\"")
    }
    guard let kind = layerKinds.first(where: { $0.typeName == type }) else {
        throw ModelSpecError.unknownLayer(layer: path, type: type)
    }
    return NamedLayer(LayerSpec(try kind.init(json: LayerFields(object: o, path: path, type: type))), name: name)
}

/// The JSON object of one layer: "type", "name" when set, and the kind's own fields.
func layerJSONObject(_ n: NamedLayer) -> [String: Any] {
    var o: [String: Any] = ["type": n.layer.typeName]
    if let name = n.name { o["name"] = name }
    n.layer.layer.encode(into: &o)
    return o
}
