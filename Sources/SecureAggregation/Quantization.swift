// Clipping, stochastic quantisation into Z_Q and the inverse map, as in Bonawitz et al. 2017 §2
// (inputs are integers mod R) and Flower's secaggplus quantize/dequantize.

/// Maps clipped values in [−R, R] to integers 0...Q−1 and a weighted integer sum back to an average.
public struct SecAggQuantizer: Sendable, Equatable {
    public let clippingRange: Double
    public let quantizationRange: UInt64
    /// Levels per unit: (Q − 1) / 2R.
    let scale: Double

    public init(parameters: SecAggParameters) {
        clippingRange = parameters.clippingRange
        quantizationRange = parameters.quantizationRange
        scale = Double(parameters.quantizationRange - 1) / (2 * parameters.clippingRange)
    }

    /// clip(x) to [−R, R], scaled to [0, Q − 1] and rounded up with probability equal to its fractional
    /// part (`uniform` is a uniform 32-bit word), so that E[q] = (clip(x) + R)(Q − 1)/2R exactly:
    /// the average stays unbiased however coarse Q is. x must not be NaN (±∞ clip to ±R).
    @inline(__always)
    public func quantize(_ x: Float, uniform: UInt32) -> UInt32 {
        let c = min(max(Double(x), -clippingRange), clippingRange)
        let s = (c + clippingRange) * scale
        let floor = s.rounded(.down)
        let up = Double(uniform) * 0x1p-32 < s - floor ? 1.0 : 0.0
        return UInt32(min(floor + up, Double(quantizationRange - 1)))
    }

    /// The weighted average of the clipped values from their weighted quantised sum and the weight sum.
    public func dequantize(sum: UInt32, weightSum: UInt64) -> Float {
        Float(Double(sum) / Double(weightSum) / scale - clippingRange)
    }
}
