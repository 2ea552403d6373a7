// residual: body(x) + shortcut(x), PyTorch's module with two nn.Sequential children `body` and
// `shortcut` (empty = identity), so its parameters are "i.body.j.weight" and "i.shortcut.j.weight".
// JSON: "body" (a list of layers, at least one), "shortcut" (optional). Compiles to the body's
// ops, the shortcut's ops, then an Add. ONNX: the body's nodes, the shortcut's, Add.
import Tensor

/// body(x) + shortcut(x).
struct ResidualLayer: Layer {
    var body: [NamedLayer], shortcut: [NamedLayer]

    static let typeName = "residual"

    init(body: [NamedLayer], shortcut: [NamedLayer]) { self.body = body; self.shortcut = shortcut }

    init(json f: LayerFields) throws {
        self.init(body: try f.list("body", required: true), shortcut: try f.list("shortcut", required: false))
    }

    func encode(into o: inout [String: Any]) {
        o["body"] = body.map(layerJSONObject)
        if !shortcut.isEmpty { o["shortcut"] = shortcut.map(layerJSONObject) }
    }

    func resolve(_ r: inout LayerResolution) throws -> TensorShape {
        guard !body.isEmpty else { throw r.bad("body", "must hold at least one layer") }
        let (rb, bodyOut) = try r.resolve(body, prefix: r.path + ".body.")
        let (rs, scOut) = try r.resolve(shortcut, prefix: r.path + ".shortcut.")
        guard bodyOut == scOut else {
            throw r.fail("the body gives \(bodyOut) but the shortcut gives \(scOut); add a shortcut (e.g. a 1x1 conv2d with the body's stride) that matches")
        }
        r.body = rb; r.shortcut = rs
        return bodyOut
    }

    func compile(_ layer: ResolvedLayer, input: Int, into e: inout OpEmitter) -> Int {
        let b = e.emit(layer.body, from: input)
        let s = layer.shortcut.isEmpty ? input : e.emit(layer.shortcut, from: input)
        let out = e.newValue(layer.output)
        e.ops.append(AddOp(name: "\(layer.path) add", inputs: [b, s], output: out, inShape: layer.output, outShape: layer.output))
        return out
    }

    func onnx(_ layer: ResolvedLayer, input x: String, into g: inout ONNXNodeBuilder) -> String {
        let body = g.emit(layer.body, from: x)
        let shortcut = g.emit(layer.shortcut, from: x)
        return g.node("Add", [body, shortcut], path: layer.path)
    }
}

extension LayerSpec {
    /// body(x) + shortcut(x); an empty shortcut is the identity.
    public static func residual(body: [NamedLayer], shortcut: [NamedLayer]) -> LayerSpec {
        LayerSpec(ResidualLayer(body: body, shortcut: shortcut))
    }
}

final class AddOp: Op {
    override func forward(_ p: Pass) { addForward(p.act[inputs[0]], p.act[inputs[1]], p.act[output], count: p.n * outShape.count) }
    override func backward(_ p: Pass, _ d0: UnsafeMutablePointer<Float>?, _ d1: UnsafeMutablePointer<Float>?) {
        let count = p.n * outShape.count
        d0?.update(from: p.grad[output], count: count)
        d1?.update(from: p.grad[output], count: count)
    }
}
