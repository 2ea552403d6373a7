import Tensor
import Testing

/// FedProx's proximal gradient: the SIMD kernel equals the scalar reference on odd sizes, and the
/// reference equals μ·(w − w₀) computed by hand.
@Suite struct ProximalTests {
    @Test(arguments: [0, 1, 7, 8, 9, 33])
    func simdEqualsScalarReference(count: Int) {
        let w = (0 ..< count).map { Float($0) * 0.37 - 2 }
        let anchor = (0 ..< count).map { Float($0 % 5) * 0.11 }
        let g0 = (0 ..< count).map { Float($0 % 3) - 1 }
        var fast = g0, slow = g0
        fast.withUnsafeMutableBufferPointer { f in
            slow.withUnsafeMutableBufferPointer { s in
                w.withUnsafeBufferPointer { wp in
                    anchor.withUnsafeBufferPointer { ap in
                        if let fb = f.baseAddress, let sb = s.baseAddress, let wb = wp.baseAddress, let ab = ap.baseAddress {
                            addProximalGradient(fb, params: wb, anchor: ab, count: count, mu: 0.5)
                            addProximalGradientReference(sb, params: wb, anchor: ab, count: count, mu: 0.5)
                        }
                    }
                }
            }
        }
        #expect(fast == slow)
        for i in 0 ..< count { #expect(abs(slow[i] - (g0[i] + 0.5 * (w[i] - anchor[i]))) <= 1e-6) }
    }
}
