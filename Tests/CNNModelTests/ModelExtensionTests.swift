// What `Model` derives from its few requirements (Model.swift, Training.swift): the parameter
// count and buffer views, and evaluation computed from the logits.
import Foundation
import Testing
@testable import CNNModel
@testable import Tensor

struct ModelExtensionTests {
    static func mlp() throws -> any Model {
        try Network(spec: Zoo.mlp(hidden: [6], classes: 3), input: .vector(7), classes: 3, seed: 5, threads: 1)
    }

    /// The count is the end of the last tensor (6·7+6 + 3·6+3 = 69 floats); the views read and
    /// write the same buffers; a wrong length is refused naming both counts.
    @Test func parameterViewsShareTheNetworksBuffers() throws {
        let m = try Self.mlp()
        #expect(m.parameterCount == 69)
        let values = (0..<69).map { Float($0) * 0.25 - 3 }
        try m.setParameters(values)
        #expect(m.parameters() == values)
        #expect(m.withParameters { Array($0) } == values)
        m.withGradients { g in for i in g.indices { g[i] = Float(i) } }
        let seen = m.withBuffers { p, g in (Array(p), Array(g)) }
        #expect(seen.0 == values)
        #expect(seen.1 == (0..<69).map(Float.init))
        #expect(throws: CNNError.parameterCountMismatch(expected: 69, got: 68)) { try m.setParameters(Array(values.dropLast())) }
        #expect(m.parameters() == values)
    }

    /// `evaluate` equals the cross-entropy and accuracy of `logits`, computed here in Double
    /// (log-sum-exp minus the label's logit; correct when the label's logit is the largest), at
    /// batch sizes that split the 150 examples every way (1, 7, 64 and more than all of them).
    @Test func evaluateIsTheCrossEntropyOfTheLogits() throws {
        let m = try Self.mlp()
        let count = 150
        let (x, y) = syntheticBatch(count: count, c: 1, h: 1, w: 7, classes: 3, seed: 2)
        let z = try x.withUnsafeBufferPointer { try m.logits(images: $0, count: count) }
        var loss = 0.0, correct = 0
        for i in 0..<count {
            let row = (0..<3).map { Double(z[i * 3 + $0]) }, top = row.max()!
            loss += top + log(row.reduce(0) { $0 + exp($1 - top) }) - row[Int(y[i])]
            if row[Int(y[i])] == top { correct += 1 }
        }
        loss /= Double(count)
        #expect(correct > 0 && correct < count)   // neither trivially right nor wrong
        for batch in [1, 7, 64, 1000] {
            let r = try x.withUnsafeBufferPointer { xs in
                try y.withUnsafeBufferPointer { ys in try m.evaluate(images: xs, labels: ys, batchSize: batch) }
            }
            #expect(r.examples == count)
            #expect(r.accuracy == Double(correct) / Double(count), "batch \(batch)")
            #expect(abs(r.loss - loss) < 1e-5 * loss, "batch \(batch): \(r.loss) vs \(loss)")
        }
        #expect(throws: CNNError.self) {
            try x.withUnsafeBufferPointer { xs in try y.withUnsafeBufferPointer { ys in try m.evaluate(images: xs, labels: ys, batchSize: 0) } }
        }
    }
}
