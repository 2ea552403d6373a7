import XCTest
@testable import Tensor

/// The implicit-im2col GEMMs (ConvGEMM.swift) against the explicit path they replace:
/// im2col/col2im (checked against their definition in Im2ColTests) and gemmReference.
/// Shapes cross the tiles (mr, nr), the row segments (widths 1..33) and the kc block (256).
struct ConvGEMMCase { let n, c, h, w, m: Int; let nchw: Bool }

func checkConvGEMMs(_ t: ConvGEMMCase, threads: Int, level: KernelLevel,
                    file: StaticString = #filePath, line: UInt = #line) throws {
    let (k, pad) = (3, 1)
    let x = t.nchw ? ImageLayout.nchw(t.n, t.c, t.h, t.w) : ImageLayout.cnhw(t.n, t.c, t.h, t.w)
    let q = t.n * t.h * t.w, rows = t.c * k * k
    let image = randomFloats(x.count, seed: 81)
    var col = [Float](repeating: 0, count: rows * q)
    image.withPtr { pi in col.withMutPtr { im2col(pi, x, kernel: k, pad: pad, col: $0, threads: 1) } }
    let ws = try GEMMWorkspace(threads: threads, level: level)
    let what = "\(t) threads=\(threads) level=\(level)"
    let tol = Float(max(rows, q, t.m)) * 4e-7 + 1e-5

    // Forward: C[m, q] = A[m, rows] · col, accumulating onto a nonzero C.
    let a = randomFloats(t.m * rows, seed: 82), c0 = randomFloats(t.m * q, seed: 83)
    var fast = c0, ref = c0
    a.withPtr { pa in image.withPtr { pi in col.withPtr { pc in
        fast.withMutPtr { gemmIm2col(m: t.m, a: pa, aRS: rows, aCS: 1, image: pi, x, kernel: k, pad: pad, c: $0,
                                     ldc: q, accumulate: true, threads: threads, workspace: ws) }
        ref.withMutPtr { gemmReference(m: t.m, n: q, k: rows, a: pa, aRS: rows, aCS: 1, b: pc, bRS: q, bCS: 1,
                                       c: $0, ldc: q, accumulate: true) }
    } } }
    var diff = maxAbsDiff(fast, ref)
    XCTAssertLessThanOrEqual(diff, tol, "gemmIm2col \(what): max |fast-ref| = \(diff)", file: file, line: line)

    // Weight gradient: C[m, rows] = G[m, q] · colᵀ.
    let g = randomFloats(t.m * q, seed: 84)
    var fastW = [Float](repeating: 7, count: t.m * rows), refW = fastW
    g.withPtr { pg in image.withPtr { pi in col.withPtr { pc in
        fastW.withMutPtr { gemmIm2colT(m: t.m, a: pg, aRS: q, aCS: 1, image: pi, x, kernel: k, pad: pad, c: $0,
                                       ldc: rows, threads: threads, workspace: ws) }
        refW.withMutPtr { gemmReference(m: t.m, n: rows, k: q, a: pg, aRS: q, aCS: 1, b: pc, bRS: 1, bCS: q,
                                        c: $0, ldc: rows) }
    } } }
    diff = maxAbsDiff(fastW, refW)
    XCTAssertLessThanOrEqual(diff, tol, "gemmIm2colT \(what): max |fast-ref| = \(diff)", file: file, line: line)

    // Input gradient: dX = col2im(Wᵀ · G) with W [m, rows] (so Wᵀ is [rows, m]).
    var dCol = [Float](repeating: 0, count: rows * q)
    var fastX = [Float](repeating: 9, count: x.count), refX = fastX
    a.withPtr { pw in g.withPtr { pg in
        fastX.withMutPtr { gemmCol2im(kd: t.m, a: pw, aRS: 1, aCS: rows, b: pg, bRS: q, bCS: 1, output: $0, x,
                                      kernel: k, pad: pad, threads: threads, workspace: ws) }
        dCol.withMutPtr { gemmReference(m: rows, n: q, k: t.m, a: pw, aRS: 1, aCS: rows, b: pg, bRS: q, bCS: 1,
                                        c: $0, ldc: q) }
    } }
    dCol.withPtr { pc in refX.withMutPtr { col2im(pc, x, kernel: k, pad: pad, output: $0, threads: 1) } }
    diff = maxAbsDiff(fastX, refX)
    XCTAssertLessThanOrEqual(diff, tol * 9, "gemmCol2im \(what): max |fast-ref| = \(diff)", file: file, line: line)
}

final class ConvGEMMTests: XCTestCase {
    /// Small odd shapes at every supported level: widths 1, 2, 5 and 33 (segments shorter and
    /// longer than a micro-panel), both layouts, rows and pixels not multiples of the tile.
    func testImplicitIm2colMatchesExplicitAllLevels() throws {
        for level in KernelLevel.supported {
            for t in [ConvGEMMCase(n: 2, c: 3, h: 4, w: 5, m: 7, nchw: true),
                      ConvGEMMCase(n: 3, c: 2, h: 3, w: 1, m: 9, nchw: false),
                      ConvGEMMCase(n: 1, c: 1, h: 2, w: 33, m: 3, nchw: true),
                      ConvGEMMCase(n: 2, c: 2, h: 2, w: 2, m: 1, nchw: false),
                      ConvGEMMCase(n: 3, c: 2, h: 5, w: 7, m: 5, nchw: false),
                      ConvGEMMCase(n: 2, c: 2, h: 4, w: 8, m: 3, nchw: true),
                      ConvGEMMCase(n: 2, c: 2, h: 16, w: 17, m: 3, nchw: false)] {
                try checkConvGEMMs(t, threads: 1, level: level)
            }
        }
    }
}

/// The first layer's direct weight gradient (dot products along the pixels) against the
/// explicit dY·colᵀ, at every level: NCHW with 1 and 3 channels and CNHW, planes that are
/// multiples of 16 (so every level's vector width divides them), odd output-channel counts.
final class ConvWeightGradDirectTests: XCTestCase {
    func testMatchesExplicitAllLevels() throws {
        for level in KernelLevel.supported {
            for (n, c, h, w, cout, nchw, threads) in [(2, 1, 4, 4, 5, true, 1), (3, 3, 8, 6, 4, true, 2),
                                                      (2, 2, 4, 8, 3, false, 2), (1, 3, 16, 16, 2, true, 1)] {
                let x = nchw ? ImageLayout.nchw(n, c, h, w) : ImageLayout.cnhw(n, c, h, w)
                let q = n * h * w, rows = c * 9
                let image = randomFloats(x.count, seed: 91), dY = randomFloats(cout * q, seed: 92)
                var col = [Float](repeating: 0, count: rows * q)
                image.withPtr { pi in col.withMutPtr { im2col(pi, x, kernel: 3, pad: 1, col: $0, threads: 1) } }
                var fast = [Float](repeating: 7, count: cout * rows), ref = fast
                var applied = false
                image.withPtr { pi in dY.withPtr { pg in col.withPtr { pc in
                    fast.withMutPtr { applied = convWeightGradDirect(cout: cout, outGrad: pg, image: pi, x, kernel: 3,
                                                                      pad: 1, weightGrad: $0, threads: threads, level: level) }
                    ref.withMutPtr { gemmReference(m: cout, n: rows, k: q, a: pg, aRS: q, aCS: 1, b: pc, bRS: 1, bCS: q,
                                                   c: $0, ldc: rows) }
                } } }
                XCTAssertTrue(applied, "direct dW should apply to \(x) at \(level)")
                let diff = maxAbsDiff(fast, ref), tol = Float(q) * 4e-7 + 1e-5
                XCTAssertLessThanOrEqual(diff, tol, "direct dW \(x) cout=\(cout) level=\(level): max |fast-ref| = \(diff)")
            }
            // Not applicable: a 5×5 plane is no multiple of the vector width; nothing is written.
            var untouched = [Float](repeating: 7, count: 2 * 9)
            let image = randomFloats(25, seed: 93), dY = randomFloats(2 * 25, seed: 94)
            let applied = image.withPtr { pi in dY.withPtr { pg in untouched.withMutPtr {
                convWeightGradDirect(cout: 2, outGrad: pg, image: pi, .nchw(1, 1, 5, 5), kernel: 3, pad: 1,
                                     weightGrad: $0, threads: 1, level: level)
            } } }
            XCTAssertFalse(applied && level != .baseline, "5x5 plane at \(level)")
            if !applied { XCTAssertEqual(untouched, [Float](repeating: 7, count: 18)) }
        }
    }
}

/// Shapes across the kc block (rows or pixels > 256) and large enough to split over two
/// threads, at every level (release only: SIMD code at -Onone is ~100x slower).
final class ConvGEMMReleaseTests: XCTestCase {
    override func setUpWithError() throws {
        #if DEBUG
        throw XCTSkip("release-only: run swift test -c release --filter ReleaseTests")
        #endif
    }

    func testBlocksAndThreadSplits() throws {
        for level in KernelLevel.supported {
            for threads in [1, 2] {
                for t in [ConvGEMMCase(n: 3, c: 31, h: 11, w: 10, m: 70, nchw: false),
                          ConvGEMMCase(n: 5, c: 40, h: 7, w: 7, m: 130, nchw: false),
                          ConvGEMMCase(n: 1, c: 64, h: 9, w: 13, m: 40, nchw: true),
                          ConvGEMMCase(n: 4, c: 3, h: 28, w: 28, m: 32, nchw: true)] {
                    try checkConvGEMMs(t, threads: threads, level: level)
                }
            }
        }
    }
}
