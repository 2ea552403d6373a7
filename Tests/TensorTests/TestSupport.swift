import XCTest
@testable import Tensor

/// Central finite difference of `f` with respect to x[i], evaluated in Double around Float data.
func finiteDifference(_ x: inout [Float], _ i: Int, eps: Float = 1e-2, _ f: ([Float]) -> Double) -> Double {
    let saved = x[i]
    x[i] = saved + eps; let up = f(x)
    x[i] = saved - eps; let down = f(x)
    x[i] = saved
    return (up - down) / (2 * Double(eps))
}

/// Σ w[i]*y[i] in Double: a scalar "loss" whose gradient with respect to y is w.
func weightedSum(_ y: [Float], _ w: [Float]) -> Double {
    zip(y, w).reduce(0) { $0 + Double($1.0) * Double($1.1) }
}

/// Asserts two arrays agree within `tol`, printing the max difference on failure.
func assertClose(_ x: [Float], _ y: [Float], tol: Float, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(x.count, y.count, "\(what): counts differ", file: file, line: line)
    let d = maxAbsDiff(x, y)
    XCTAssertLessThanOrEqual(d, tol, "\(what): max |fast-ref| = \(d) > \(tol)", file: file, line: line)
}

extension Array where Element == Float {
    /// Base pointer of a non-empty array for kernel calls in tests.
    func withPtr<R>(_ body: (UnsafePointer<Float>) -> R) -> R {
        withUnsafeBufferPointer { body($0.baseAddress!) }
    }
    /// Mutable base pointer of a non-empty array for kernel calls in tests.
    mutating func withMutPtr<R>(_ body: (UnsafeMutablePointer<Float>) -> R) -> R {
        withUnsafeMutableBufferPointer { body($0.baseAddress!) }
    }
}
