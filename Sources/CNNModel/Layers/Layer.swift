// Layer: one layer kind, whole, in one file of this folder. A kind is a value type (its PyTorch
// constructor arguments) that knows its JSON "type" name and fields, its output shape and
// parameters for an input shape, PyTorch's default initialisation of those parameters, the ops
// that run its forward and backward passes (and DP-SGD's per-example norms), and its ONNX nodes.
//
// Adding a layer kind: one file here with a struct conforming to `Layer` (and its `Op` subclass,
// if no existing op fits), a `LayerSpec` factory in that file for Swift callers, and one line in
// `layerKinds` below so the JSON form (`--model-spec`) finds it by its type name. Nothing else
// switches over layer kinds: resolution (LayerResolution.swift), the JSON form (SpecJSON.swift),
// initialisation and compilation (Network.swift, NetworkCompile.swift) and ONNX export
// (ONNXNodes.swift, module ONNXExport) all ask the layer.
import Foundation
import Tensor

/// Every layer kind, found by `typeName` when a JSON spec is read.
let layerKinds: [any Layer.Type] = [
    Conv2dLayer.self, MaxPool2dLayer.self, AvgPool2dLayer.self, GlobalAvgPoolLayer.self, ReLULayer.self,
    FlattenLayer.self, LinearLayer.self, DropoutLayer.self, GroupNormLayer.self, ResidualLayer.self,
]

/// One layer kind (see the top of this file).
protocol Layer: Sendable, Equatable {
    /// The "type" string of the JSON form.
    static var typeName: String { get }
    /// Reads the layer from its JSON object (errors name the layer path and the field).
    init(json: LayerFields) throws
    /// Writes the layer's own fields (not "type" or "name") into its JSON object.
    func encode(into object: inout [String: Any])
    /// Checks the input shape `r.input`, declares the parameters (`r.add`, in PyTorch's order)
    /// and returns the output shape of one example.
    func resolve(_ r: inout LayerResolution) throws -> TensorShape
    /// Writes PyTorch's default initial values of `layer.parameters` into `params`, drawing from
    /// `rng` in parameter order. Layers without parameters draw nothing.
    func initialise(_ layer: ResolvedLayer, params: UnsafeMutablePointer<Float>, rng: inout SplitMix64)
    /// Appends the ops that compute this layer from value `input`; returns the output value.
    func compile(_ layer: ResolvedLayer, input: Int, into e: inout OpEmitter) -> Int
    /// Appends this layer's ONNX nodes reading value `input`; returns the output value's name.
    func onnx(_ layer: ResolvedLayer, input: String, into g: inout ONNXNodeBuilder) -> String
}

extension Layer {
    func initialise(_ layer: ResolvedLayer, params: UnsafeMutablePointer<Float>, rng: inout SplitMix64) {}

    /// Whether `other` is this same layer.
    func isEqual(to other: any Layer) -> Bool { (other as? Self) == self }

    /// PyTorch's conv/linear default: every parameter U(±1/√fan_in) (Kaiming-uniform with a=√5
    /// gives exactly this bound), drawn in parameter order.
    func uniformInit(_ layer: ResolvedLayer, fanIn: Int, params: UnsafeMutablePointer<Float>, rng: inout SplitMix64) {
        guard fanIn > 0 else { return }
        let bound = 1 / Float(fanIn).squareRoot()
        for e in layer.parameters {
            for i in e.offset..<(e.offset + e.count) { params[i] = Float.random(in: -bound...bound, using: &rng) }
        }
    }

    /// Appends the one op `make(name, output value)` builds, after allocating its output value
    /// of the layer's output shape; the op is named "<path> <type name>".
    func single(_ layer: ResolvedLayer, into e: inout OpEmitter, _ make: (_ name: String, _ output: Int) -> Op) -> Int {
        let out = e.newValue(layer.output)
        e.ops.append(make("\(layer.path) \(Self.typeName)", out))
        return out
    }
}

/// One layer of a network spec: a layer kind's value. Built with the factories each kind's file
/// declares (`.conv2d(...)`, `.relu`, ...) or read from JSON.
public struct LayerSpec: Equatable, Sendable, CustomStringConvertible {
    /// The layer kind's value.
    let layer: any Layer

    init(_ layer: any Layer) { self.layer = layer }

    /// The "type" string of the JSON form.
    public var typeName: String { type(of: layer).typeName }

    public var description: String { "\(layer)" }

    public static func == (a: LayerSpec, b: LayerSpec) -> Bool { a.layer.isEqual(to: b.layer) }
}

/// The fields of one layer's JSON object, with typed readers whose errors name the layer path.
struct LayerFields {
    /// The object.
    let object: [String: Any]
    /// The layer's path ("3", "2.body.1").
    let path: String
    /// The "type" value.
    let type: String

    /// Integer field `key` (`fallback` when absent; absent without one is an error).
    func int(_ key: String, _ fallback: Int? = nil) throws -> Int {
        guard let v = object[key] else {
            if let fallback { return fallback }
            throw ModelSpecError.badField(layer: path, field: key, why: "is missing")
        }
        guard !isJSONBool(v), let n = v as? NSNumber, let i = Int(exactly: n.doubleValue) else {
            throw ModelSpecError.badField(layer: path, field: key, why: "must be an integer, got \(v)")
        }
        return i
    }

    /// Optional integer field `key`.
    func optInt(_ key: String) throws -> Int? { object[key] == nil ? nil : try int(key) }

    /// Number field `key` (`fallback` when absent).
    func double(_ key: String, _ fallback: Double) throws -> Double {
        guard let v = object[key] else { return fallback }
        guard !isJSONBool(v), let n = v as? NSNumber else {
            throw ModelSpecError.badField(layer: path, field: key, why: "must be a number, got \(v)")
        }
        return n.doubleValue
    }

    /// Field `key` as a list of layers (paths "<path>.<key>.<i>"); absent: empty unless `required`.
    func list(_ key: String, required: Bool) throws -> [NamedLayer] {
        guard let v = object[key] else {
            if required { throw ModelSpecError.badField(layer: path, field: key, why: "is missing") }
            return []
        }
        guard let l = v as? [Any] else { throw ModelSpecError.badField(layer: path, field: key, why: "must be a list of layers") }
        return try parseLayerList(l, prefix: "\(path).\(key).")
    }
}

/// Appends ops and allocates values while a network compiles (NetworkCompile.swift).
struct OpEmitter {
    /// The ops so far, in execution order.
    var ops: [Op] = []
    /// Per-example shape of every value so far (value 0 is the input).
    var shapes: [TensorShape]

    /// A new value of per-example shape `s`.
    mutating func newValue(_ s: TensorShape) -> Int { shapes.append(s); return shapes.count - 1 }

    /// Compiles `layers` in order from value `v`; returns the last output value.
    mutating func emit(_ layers: [ResolvedLayer], from v: Int) -> Int {
        var v = v
        for l in layers { v = l.spec.layer.compile(l, input: v, into: &self) }
        return v
    }
}

/// JSON true/false (Foundation on Linux bridges 0/1 numbers to Bool in `is` checks, so ask the
/// dynamic type instead).
func isJSONBool(_ v: Any) -> Bool { type(of: v) == Bool.self || String(describing: type(of: v)).hasSuffix("Boolean") }

/// A 2-D pooling layer (nn.MaxPool2d, nn.AvgPool2d): kernel, stride and padding, read and written
/// as PyTorch names them, the same shape rule, and the ONNX pooling attributes.
protocol Pool2dLayer: Layer {
    var kernel: Int { get }
    var stride: Int { get }
    var padding: Int { get }
    init(kernel: Int, stride: Int, padding: Int)
}

extension Pool2dLayer {
    init(json f: LayerFields) throws {
        let k = try f.int("kernel_size")
        self.init(kernel: k, stride: try f.int("stride", k), padding: try f.int("padding", 0))
    }

    func encode(into o: inout [String: Any]) { o["kernel_size"] = kernel; o["stride"] = stride; o["padding"] = padding }

    func resolve(_ r: inout LayerResolution) throws -> TensorShape { try r.pool(kernel, stride, padding) }

    var geometry: PoolGeometry { PoolGeometry(kernel: kernel, stride: stride, pad: padding) }

    /// ONNX's kernel_shape, strides, pads (floor mode) for this layer.
    var onnxPoolAttributes: [(String, ONNXAttribute)] {
        [("kernel_shape", .ints([kernel, kernel])), ("strides", .ints([stride, stride])),
         ("pads", .ints([padding, padding, padding, padding])), ("ceil_mode", .int(0))]
    }
}
