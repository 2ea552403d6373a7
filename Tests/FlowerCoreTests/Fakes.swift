import FlowerCore
import Logging
import TestSupport

/// A client that trains by adding `delta` to the global model and reports `numExamples`.
func adder(_ id: String, delta: [Float], numExamples: Int) -> FakeClient {
    FakeClient(id, onFit: { ins, _ in
        var p = ins.parameters
        for i in p.values.indices { p.values[i] += delta[i] }
        return FitRes(round: ins.round, parameters: p, numExamples: numExamples, metrics: ["loss": .double(1)])
    })
}

/// Three float values as tensors `w` [2] and `b` [1].
func model(_ v: [Float]) throws -> Parameters {
    try Parameters(shapes: [("w", [2]), ("b", [1])], values: v)
}

