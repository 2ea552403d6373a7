// Elementwise layers on flat buffers (any layout): residual add, seeded dropout, accumulation.
//   add:     y = a + b                       backward: da = db = dy
//   dropout: y = x·mask, mask_i = 0 with probability p, else 1/(1−p)   backward: dx = dy·mask

/// y = a + b over `count` floats (y may alias a or b).
public func addForward(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
    var i = 0
    typealias V = SIMD8<Float>
    while i + 8 <= count {
        let s = UnsafeRawPointer(a + i).loadUnaligned(as: V.self) + UnsafeRawPointer(b + i).loadUnaligned(as: V.self)
        UnsafeMutableRawPointer(y + i).storeBytes(of: s, as: V.self)
        i += 8
    }
    while i < count { y[i] = a[i] + b[i]; i += 1 }
}

/// Draws a dropout mask of `count` values (0 with probability p, else 1/(1−p)) from `rng`.
public func dropoutMask(_ mask: UnsafeMutablePointer<Float>, count: Int, p: Float, rng: inout SplitMix64) {
    let keep = 1 / (1 - p)
    for i in 0..<count { mask[i] = Float.random(in: 0..<1, using: &rng) < p ? 0 : keep }
}

/// y = x·mask (also the backward pass: dx = dy·mask); y may alias x.
public func multiply(_ x: UnsafePointer<Float>, _ mask: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
    var i = 0
    typealias V = SIMD8<Float>
    while i + 8 <= count {
        let s = UnsafeRawPointer(x + i).loadUnaligned(as: V.self) * UnsafeRawPointer(mask + i).loadUnaligned(as: V.self)
        UnsafeMutableRawPointer(y + i).storeBytes(of: s, as: V.self)
        i += 8
    }
    while i < count { y[i] = x[i] * mask[i]; i += 1 }
}
