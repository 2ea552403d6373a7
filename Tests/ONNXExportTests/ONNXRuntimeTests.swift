// Our ONNX files in peers nobody here wrote: onnx.checker.check_model (full_check, with shape
// inference) accepts them, and onnxruntime's outputs match a numpy evaluation of the same
// network (PyTorch semantics: NCHW, cross-correlation, floor-mode pools, GroupNorm with biased
// variance) within 1e-4. Every layer kind is in the network below.
import TestSupport
import CNNModel
import Foundation
@testable import ONNXExport
import XCTest

/// numpy evaluation of a spec's JSON form, with parameters consumed in state_dict order.
let numpyReference = #"""
import json, sys
import numpy as np
def pad(x, p): return np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
def windows(x, k, s):
    n, c, h, w = x.shape; oh, ow = (h - k) // s + 1, (w - k) // s + 1
    out = np.empty((n, c, oh, ow, k, k), x.dtype)
    for i in range(k):
        for j in range(k): out[..., i, j] = x[:, :, i:i + s * oh:s, j:j + s * ow:s]
    return out
class Params:
    def __init__(self, flat): self.flat, self.at = flat, 0
    def take(self, shape):
        n = int(np.prod(shape)); v = self.flat[self.at:self.at + n].reshape(shape); self.at += n; return v
def run(layers, x, p):
    for l in layers:
        t = l['type']
        if t == 'conv2d':
            k, s, pd, o = l['kernel_size'], l.get('stride', 1), l.get('padding', 0), l['out_channels']
            w, b = p.take((o, x.shape[1], k, k)), p.take((o,))
            x = np.einsum('ncijab,ocab->noij', windows(pad(x, pd), k, s), w) + b[None, :, None, None]
        elif t == 'maxpool2d':
            k = l['kernel_size']; s = l.get('stride', k); pd = l.get('padding', 0)
            x = windows(np.pad(x, ((0, 0), (0, 0), (pd, pd), (pd, pd)), constant_values=-np.inf), k, s).max(axis=(4, 5))
        elif t == 'avgpool2d':
            k = l['kernel_size']; s = l.get('stride', k); pd = l.get('padding', 0)
            x = windows(pad(x, pd), k, s).mean(axis=(4, 5))
        elif t == 'global_avgpool': x = x.mean(axis=(2, 3), keepdims=True)
        elif t == 'relu': x = np.maximum(x, 0)
        elif t == 'dropout': pass
        elif t == 'flatten': x = x.reshape(x.shape[0], -1)
        elif t == 'linear':
            o = l['out_features']; w, b = p.take((o, x.shape[1])), p.take((o,)); x = x @ w.T + b
        elif t == 'groupnorm':
            n, c, h, w_ = x.shape; g = l['num_groups']; eps = l.get('eps', 1e-5)
            weight, bias = p.take((c,)), p.take((c,))
            y = x.reshape(n, g, -1); y = (y - y.mean(2, keepdims=True)) / np.sqrt(y.var(2, keepdims=True) + eps)
            x = y.reshape(n, c, h, w_) * weight[None, :, None, None] + bias[None, :, None, None]
        elif t == 'residual':
            body = run(l['body'], x, p); x = body + run(l.get('shortcut', []), x, p)
        else: raise SystemExit('unknown layer ' + t)
    return x
"""#

final class ONNXRuntimeTests: XCTestCase {
    /// Every layer kind: conv (stride 2, padding), GroupNorm, a residual with a conv shortcut and
    /// one with the identity, avgpool with padding, maxpool, dropout, global pool, linear.
    func testEveryLayerKindMatchesNumpyInOnnxruntime() throws {
        func conv(_ c: Int, _ k: Int, _ s: Int = 1, _ p: Int = 0) -> NamedLayer {
            NamedLayer(.conv2d(outChannels: c, kernel: k, stride: s, padding: p, inChannels: nil))
        }
        let spec = NetworkSpec(layers: [
            conv(8, 3, 1, 1), NamedLayer(.groupNorm(groups: 2, eps: 1e-5)), NamedLayer(.relu),
            NamedLayer(.residual(body: [conv(8, 3, 1, 1), NamedLayer(.groupNorm(groups: 4, eps: 1e-3))], shortcut: [])),
            NamedLayer(.relu),
            NamedLayer(.residual(body: [conv(4, 3, 2, 1)], shortcut: [conv(4, 1, 2)])),
            NamedLayer(.avgPool2d(kernel: 3, stride: 1, padding: 1)), NamedLayer(.maxPool2d(kernel: 2, stride: 2, padding: 0)),
            NamedLayer(.dropout(p: 0.5)), NamedLayer(.globalAvgPool), NamedLayer(.flatten),
            NamedLayer(.linear(outFeatures: 6, inFeatures: nil)), NamedLayer(.relu), NamedLayer(.linear(outFeatures: 3, inFeatures: nil)),
        ])
        let json = String(decoding: try spec.jsonData(), as: UTF8.self)
        try check(spec: spec, json: json, input: .image(channels: 2, height: 9, width: 7), classes: 3)
    }

    /// A tabular MLP: input [N, F].
    func testMLPOnFeaturesMatchesNumpyInOnnxruntime() throws {
        let spec = Zoo.mlp(hidden: [16, 8], classes: 3)
        try check(spec: spec, json: String(decoding: try spec.jsonData(), as: UTF8.self), input: .vector(13), classes: 3)
    }

    private func check(spec: NetworkSpec, json: String, input: TensorShape, classes: Int) throws {
        let dir = try temporaryFolder()
                let layers = try spec.resolve(input: input, classes: classes)
        let count = NetworkSpec.parameterEntries(layers).reduce(0) { $0 + $1.count }
        let params = pseudoRandom(count, seed: 11)
        let batch = 5
        let x = pseudoRandom(batch * input.count, seed: 12, scale: 1)
        try ONNXGraph(layers: layers, input: input, parameters: params).write(to: "\(dir)/model.onnx")
        try writeFloats(params, to: "\(dir)/params.bin"); try writeFloats(x, to: "\(dir)/x.bin")
        try Data(json.utf8).write(to: URL(fileURLWithPath: "\(dir)/spec.json"))
        let out = try runPython(numpyReference + "\n" + """
            import onnx, onnxruntime as ort
            m = onnx.load('\(dir)/model.onnx')
            onnx.checker.check_model(m, full_check=True)
            assert [i.name for i in m.graph.input] == ['input'] and [o.name for o in m.graph.output] == ['logits']
            assert m.opset_import[0].version >= 13
            x = np.fromfile('\(dir)/x.bin', dtype=np.float32).reshape(\(input.withBatch(batch)))
            p = Params(np.fromfile('\(dir)/params.bin', dtype=np.float32).astype(np.float64))
            ref = run(json.load(open('\(dir)/spec.json')), x.astype(np.float64), p)
            assert p.at == p.flat.size, (p.at, p.flat.size)
            s = ort.InferenceSession('\(dir)/model.onnx', providers=['CPUExecutionProvider'])
            got = s.run(['logits'], {'input': x})[0]
            assert got.shape == (\(batch), \(classes)), got.shape
            print(float(np.abs(got - ref).max()), float(np.abs(ref).max()))
            """, self)
        let parts = out.split(separator: " ").compactMap { Double($0) }
        XCTAssertEqual(parts.count, 2, "python printed: \(out)")
        XCTAssertLessThan(parts.first ?? 1, 1e-4, "onnxruntime vs numpy: max |difference| (max |logit| \(parts.last ?? 0))")
        XCTAssertGreaterThan(parts.last ?? 0, 1e-3, "the logits are not all zero (a test that could not fail otherwise)")
    }
}
