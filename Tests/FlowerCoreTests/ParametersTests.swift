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
}
