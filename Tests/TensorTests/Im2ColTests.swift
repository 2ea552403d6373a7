import XCTest
@testable import Tensor

/// im2col against its definition, and col2im as its exact adjoint: <im2col(x), c> = <x, col2im(c)>.
final class Im2ColTests: XCTestCase {
    func testDefinitionAndAdjoint() {
        let (n, c, h, w, k, pad) = (2, 3, 5, 4, 3, 1)
        let x = ImageLayout.nchw(n, c, h, w), q = n * h * w, rows = c * k * k
        let input = randomFloats(x.count, seed: 71)
        var col = [Float](repeating: 0, count: rows * q)
        input.withPtr { pi in col.withMutPtr { im2col(pi, x, kernel: k, pad: pad, col: $0, threads: 2) } }
        for r in 0..<rows { for b in 0..<n { for y in 0..<h { for xx in 0..<w {
            let ch = r / 9, ky = (r / 3) % 3, kx = r % 3, sy = y + ky - pad, sx = xx + kx - pad
            let expected: Float = (sy < 0 || sy >= h || sx < 0 || sx >= w) ? 0 : input[x.offset(b, ch, sy, sx)]
            XCTAssertEqual(col[r * q + (b * h + y) * w + xx], expected, "col[\(r), \(b), \(y), \(xx)]")
        } } } }
        let cvec = randomFloats(rows * q, seed: 72)
        var back = [Float](repeating: 5, count: x.count)
        cvec.withPtr { pc in back.withMutPtr { col2im(pc, x, kernel: k, pad: pad, output: $0, threads: 2) } }
        XCTAssertEqual(weightedSum(col, cvec), weightedSum(input, back), accuracy: 1e-3)
    }
}
