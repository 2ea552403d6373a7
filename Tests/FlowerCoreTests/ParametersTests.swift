import FlowerCore
import XCTest

final class ParametersTests: XCTestCase {
    func testLayoutOffsetsAndLookup() throws {
        let p = try Parameters(shapes: [("a", [2, 3]), ("b", [4]), ("c", [])],
                               values: (0 ..< 11).map(Float.init))
        XCTAssertEqual(p.layout.map(\.offset), [0, 6, 10])
        XCTAssertEqual(p.tensor(named: "b"), [6, 7, 8, 9])
        XCTAssertEqual(p.tensor(named: "c"), [10])
        XCTAssertNil(p.tensor(named: "d"))
    }

    func testBadLayoutsAreRejected() {
        XCTAssertThrowsError(try Parameters(shapes: [("a", [2])], values: [1, 2, 3])) {
            XCTAssertEqual($0 as? ParametersError, .sizeMismatch(expected: 2, got: 3))
        }
        XCTAssertThrowsError(try Parameters(shapes: [("a", [1]), ("a", [1])], values: [1, 2])) {
            XCTAssertEqual($0 as? ParametersError, .duplicateName("a"))
        }
    }

    func testNonFiniteDetectionAndLayoutMismatch() throws {
        let p = try Parameters(shapes: [("w", [3])], values: [1, .nan, 2])
        XCTAssertEqual(p.firstNonFinite(), 1)
        let q = try Parameters(shapes: [("w", [1, 3])], values: [1, 2, 3])
        XCTAssertEqual(q.layoutMismatch(against: p), "tensor w [1, 3] where w [3] was expected")
        XCTAssertNil(p.layoutMismatch(against: p))
    }

    /// The 16-lane passes against scalar references: every length 0…70 (whole blocks and tails),
    /// a NaN or an infinity at every position, and the norm to 1e-12 of a serial Double sum.
    func testVectorisedScreeningMatchesTheScalarReference() throws {
        var rng = SplitMix64(seed: 11)
        for n in 0 ... 70 {
            let g = (0 ..< n).map { _ in Float.random(in: -2 ... 2, using: &rng) }
            let u = (0 ..< n).map { _ in Float.random(in: -2 ... 2, using: &rng) * 1000 }
            let global = try Parameters(shapes: [("w", [n])], values: g)
            let update = try Parameters(shapes: [("w", [n])], values: u)
            XCTAssertNil(update.firstNonFinite(), "n \(n)")
            var reference = 0.0
            for k in 0 ..< n { reference += (Double(u[k]) - Double(g[k])) * (Double(u[k]) - Double(g[k])) }
            let norm = try XCTUnwrap(updateNorm(update, from: global))
            XCTAssertEqual(norm, reference.squareRoot(), accuracy: 1e-12 * max(1, reference.squareRoot()), "n \(n)")
            for k in 0 ..< n {
                for bad in [Float.nan, .infinity, -.infinity] {
                    var v = u
                    v[k] = bad
                    let poisoned = try Parameters(shapes: [("w", [n])], values: v)
                    XCTAssertEqual(poisoned.firstNonFinite(), k, "n \(n), \(bad) at \(k)")
                    XCTAssertNil(updateNorm(poisoned, from: global), "n \(n), \(bad) at \(k)")
                }
            }
        }
        // Two bad values: the first is reported.
        var v = [Float](repeating: 1, count: 40)
        v[33] = .nan; v[5] = .infinity
        XCTAssertEqual(try Parameters(shapes: [("w", [40])], values: v).firstNonFinite(), 5)
        // Large finite values are finite (x·0 = 0) and their squares fit in Double.
        let big = try Parameters(shapes: [("w", [32])], values: [Float](repeating: .greatestFiniteMagnitude, count: 32))
        XCTAssertNil(big.firstNonFinite())
        XCTAssertNotNil(updateNorm(big, from: try Parameters(shapes: [("w", [32])], values: [Float](repeating: 0, count: 32))))
    }
}
