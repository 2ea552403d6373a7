@testable import Tensor

/// Gradient of L = Σ w·f(x) with respect to x[i] by central differences in Double, with f
/// evaluated by a reference kernel on Float data.
func centralDifference(_ x: [Float], _ i: Int, eps: Float = 1e-2, _ f: ([Float]) -> [Float], _ w: [Float]) -> Double {
    var up = x, down = x
    up[i] += eps; down[i] -= eps
    return (weightedSum(f(up), w) - weightedSum(f(down), w)) / (2 * Double(eps))
}

/// |a − b| <= tol·max(1, |b|), elementwise; returns the worst offender for the message.
func worstRelative(_ a: [Float], _ b: [Float]) -> Float {
    zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1) / max(1, abs($1.1))) }
}
