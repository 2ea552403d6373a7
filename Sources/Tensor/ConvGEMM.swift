// Convolution GEMMs with implicit im2col: threading and dispatch for the kernels in
// GEMMKernels/ConvGEMM.swift. The explicit path (Im2Col.swift + gemm) is their reference.
//
// With X in ImageLayout x (N×C×H×W), kernel k, padding pad, stride 1, the virtual matrix
// col = im2col(X) is [C*k*k, N*H*W] (Im2Col.swift). These compute, without storing col:
//   gemmIm2col:  C[m, N*H*W] = A[m, C*k*k] · col           (convolution forward)
//   gemmIm2colT: C[m, C*k*k] = A[m, N*H*W] · colᵀ          (weight gradient)
//   gemmCol2im:  dX = col2im(A[C*k*k, kd] · B[kd, N*H*W])  (input gradient; dX overwritten)
import TensorGEMMAVX2
import TensorGEMMAVX512
import TensorGEMMBaseline

/// Raw arguments shared by the workers of one convolution GEMM (they write disjoint memory).
struct ConvGEMMArgs: @unchecked Sendable {
    let a: UnsafePointer<Float>, aRS: Int, aCS: Int
    let b: UnsafePointer<Float>?, bRS: Int, bCS: Int
    let image: UnsafeMutablePointer<Float>, x: ImageLayout, kernel: Int, pad: Int
    let c: UnsafeMutablePointer<Float>?, ldc: Int, k: Int, accumulate: Bool
}

/// C[m, N*H*W] = A·im2col(X) (C += when `accumulate`), A element (i,p) at a[i*aRS + p*aCS].
public func gemmIm2col(m: Int, a: UnsafePointer<Float>, aRS: Int, aCS: Int,
                       image: UnsafePointer<Float>, _ x: ImageLayout, kernel: Int, pad: Int,
                       c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool = false,
                       threads: Int, workspace ws: GEMMWorkspace) {
    let n = x.batch * x.plane, k = x.channels * kernel * kernel
    let g = ConvGEMMArgs(a: a, aRS: aRS, aCS: aCS, b: nil, bRS: 0, bCS: 0, image: UnsafeMutablePointer(mutating: image),
                         x: x, kernel: kernel, pad: pad, c: c, ldc: ldc, k: k, accumulate: accumulate)
    let level = ws.level
    splitGEMM(m: m, n: n, k: k, threads: threads, workspace: ws, colAlign: 32, rowAlign: 24) { rows, cols, pa, pb in
        let a = g.a + rows.lowerBound * g.aRS, x = g.x
        guard let c0 = g.c else { return }
        let c = c0 + rows.lowerBound * g.ldc + cols.lowerBound
        let img = UnsafePointer(g.image)
        switch level {
        case .avx512:
            TensorGEMMAVX512.gemmIm2colSerial(m: rows.count, n: cols.count, k: g.k, a: a, aRS: g.aRS, aCS: g.aCS,
                image: img, batch: x.batch, h: x.height, w: x.width, bs: x.batchStride, cs: x.channelStride, kernel: g.kernel,
                pad: g.pad, q0: cols.lowerBound, c: c, ldc: g.ldc, accumulate: g.accumulate, packA: pa, packB: pb)
        case .avx2:
            TensorGEMMAVX2.gemmIm2colSerial(m: rows.count, n: cols.count, k: g.k, a: a, aRS: g.aRS, aCS: g.aCS,
                image: img, batch: x.batch, h: x.height, w: x.width, bs: x.batchStride, cs: x.channelStride, kernel: g.kernel,
                pad: g.pad, q0: cols.lowerBound, c: c, ldc: g.ldc, accumulate: g.accumulate, packA: pa, packB: pb)
        case .baseline:
            TensorGEMMBaseline.gemmIm2colSerial(m: rows.count, n: cols.count, k: g.k, a: a, aRS: g.aRS, aCS: g.aCS,
                image: img, batch: x.batch, h: x.height, w: x.width, bs: x.batchStride, cs: x.channelStride, kernel: g.kernel,
                pad: g.pad, q0: cols.lowerBound, c: c, ldc: g.ldc, accumulate: g.accumulate, packA: pa, packB: pb)
        }
    }
}

/// C[m, C*k*k] = A·im2col(X)ᵀ (C += when `accumulate`), A [m, N*H*W] with element (i,p) at
/// a[i*aRS + p*aCS]: the reduction runs over every pixel of the batch.
public func gemmIm2colT(m: Int, a: UnsafePointer<Float>, aRS: Int, aCS: Int,
                        image: UnsafePointer<Float>, _ x: ImageLayout, kernel: Int, pad: Int,
                        c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool = false,
                        threads: Int, workspace ws: GEMMWorkspace) {
    let n = x.channels * kernel * kernel, k = x.batch * x.plane
    let g = ConvGEMMArgs(a: a, aRS: aRS, aCS: aCS, b: nil, bRS: 0, bCS: 0, image: UnsafeMutablePointer(mutating: image),
                         x: x, kernel: kernel, pad: pad, c: c, ldc: ldc, k: k, accumulate: accumulate)
    let level = ws.level
    splitGEMM(m: m, n: n, k: k, threads: threads, workspace: ws, colAlign: 32, rowAlign: 24) { rows, cols, pa, pb in
        let a = g.a + rows.lowerBound * g.aRS, x = g.x
        guard let c0 = g.c else { return }
        let c = c0 + rows.lowerBound * g.ldc + cols.lowerBound
        let img = UnsafePointer(g.image)
        switch level {
        case .avx512:
            TensorGEMMAVX512.gemmIm2colTSerial(m: rows.count, n: cols.count, k: g.k, a: a, aRS: g.aRS, aCS: g.aCS,
                image: img, batch: x.batch, h: x.height, w: x.width, bs: x.batchStride, cs: x.channelStride, kernel: g.kernel,
                pad: g.pad, r0: cols.lowerBound, c: c, ldc: g.ldc, accumulate: g.accumulate, packA: pa, packB: pb)
        case .avx2:
            TensorGEMMAVX2.gemmIm2colTSerial(m: rows.count, n: cols.count, k: g.k, a: a, aRS: g.aRS, aCS: g.aCS,
                image: img, batch: x.batch, h: x.height, w: x.width, bs: x.batchStride, cs: x.channelStride, kernel: g.kernel,
                pad: g.pad, r0: cols.lowerBound, c: c, ldc: g.ldc, accumulate: g.accumulate, packA: pa, packB: pb)
        case .baseline:
            TensorGEMMBaseline.gemmIm2colTSerial(m: rows.count, n: cols.count, k: g.k, a: a, aRS: g.aRS, aCS: g.aCS,
                image: img, batch: x.batch, h: x.height, w: x.width, bs: x.batchStride, cs: x.channelStride, kernel: g.kernel,
                pad: g.pad, r0: cols.lowerBound, c: c, ldc: g.ldc, accumulate: g.accumulate, packA: pa, packB: pb)
        }
    }
}

/// dX = col2im(A·B), overwriting `output` (layout x): A [C*k*k, kd] with element (i,p) at
/// a[i*aRS + p*aCS], B [kd, N*H*W] with element (p,j) at b[p*bRS + j*bCS]. Workers split the
/// pixels at image boundaries or the rows at channel boundaries, so their writes are disjoint.
public func gemmCol2im(kd: Int, a: UnsafePointer<Float>, aRS: Int, aCS: Int,
                       b: UnsafePointer<Float>, bRS: Int, bCS: Int,
                       output: UnsafeMutablePointer<Float>, _ x: ImageLayout, kernel: Int, pad: Int,
                       threads: Int, workspace ws: GEMMWorkspace) {
    let m = x.channels * kernel * kernel, n = x.batch * x.plane
    zeroImage(output, x)
    let g = ConvGEMMArgs(a: a, aRS: aRS, aCS: aCS, b: b, bRS: bRS, bCS: bCS, image: output, x: x, kernel: kernel,
                         pad: pad, c: nil, ldc: 0, k: kd, accumulate: true)
    let level = ws.level
    splitGEMM(m: m, n: n, k: kd, threads: threads, workspace: ws, colAlign: x.plane,
              rowAlign: kernel * kernel) { rows, cols, pa, pb in
        guard let b0 = g.b else { return }
        let a = g.a + rows.lowerBound * g.aRS, b = b0 + cols.lowerBound * g.bCS, x = g.x
        switch level {
        case .avx512:
            TensorGEMMAVX512.gemmCol2imSerial(m: rows.count, n: cols.count, k: g.k, a: a, aRS: g.aRS, aCS: g.aCS,
                b: b, bRS: g.bRS, bCS: g.bCS, imageGrad: g.image, batch: x.batch, h: x.height, w: x.width, bs: x.batchStride,
                cs: x.channelStride, kernel: g.kernel, pad: g.pad, r0: rows.lowerBound, q0: cols.lowerBound,
                packA: pa, packB: pb)
        case .avx2:
            TensorGEMMAVX2.gemmCol2imSerial(m: rows.count, n: cols.count, k: g.k, a: a, aRS: g.aRS, aCS: g.aCS,
                b: b, bRS: g.bRS, bCS: g.bCS, imageGrad: g.image, batch: x.batch, h: x.height, w: x.width, bs: x.batchStride,
                cs: x.channelStride, kernel: g.kernel, pad: g.pad, r0: rows.lowerBound, q0: cols.lowerBound,
                packA: pa, packB: pb)
        case .baseline:
            TensorGEMMBaseline.gemmCol2imSerial(m: rows.count, n: cols.count, k: g.k, a: a, aRS: g.aRS, aCS: g.aCS,
                b: b, bRS: g.bRS, bCS: g.bCS, imageGrad: g.image, batch: x.batch, h: x.height, w: x.width, bs: x.batchStride,
                cs: x.channelStride, kernel: g.kernel, pad: g.pad, r0: rows.lowerBound, q0: cols.lowerBound,
                packA: pa, packB: pb)
        }
    }
}

/// Zeroes every element of an image batch in layout x (contiguous planes are cleared at once).
func zeroImage(_ p: UnsafeMutablePointer<Float>, _ x: ImageLayout) {
    if x.channelStride == x.batch * x.plane && x.batchStride == x.plane || x.batchStride == x.channels * x.plane
        && x.channelStride == x.plane {
        p.initialize(repeating: 0, count: x.count)
        return
    }
    for n in 0..<x.batch {
        for c in 0..<x.channels { (p + n * x.batchStride + c * x.channelStride).initialize(repeating: 0, count: x.plane) }
    }
}

/// dW[Cout, C*9] = dY·im2col(X)ᵀ for a 3×3 convolution with few input channels (C*9 <= 27: the
/// first layer) as dot products along the pixels (GEMMKernels/ConvWeightGradDirect.swift),
/// rows split across threads. Returns false, writing nothing, where that kernel does not apply;
/// the caller then uses gemmIm2colT.
public func convWeightGradDirect(cout: Int, outGrad: UnsafePointer<Float>, image: UnsafePointer<Float>,
                                 _ x: ImageLayout, kernel: Int, pad: Int, weightGrad: UnsafeMutablePointer<Float>,
                                 threads: Int, level: KernelLevel) -> Bool {
    guard kernel == 3, x.channels * 9 <= 27, cout > 0 else { return false }
    let parts = max(1, min(threads, cout / 2))
    let g = ConvGEMMArgs(a: outGrad, aRS: 0, aCS: 0, b: nil, bRS: 0, bCS: 0, image: UnsafeMutablePointer(mutating: image),
                         x: x, kernel: kernel, pad: pad, c: weightGrad, ldc: 0, k: cout, accumulate: false)
    return withUnsafeTemporaryAllocation(of: Bool.self, capacity: parts) { results -> Bool in
        guard let base = results.baseAddress else { return false }
        base.initialize(repeating: false, count: parts)
        let ok = UnsafeTransfer(base)
        Parallel.run(parts) { part in
            let rows = Parallel.range(part, of: parts, count: g.k, align: 2), x = g.x
            guard let dW = g.c else { return }
            let img = UnsafePointer(g.image)
            switch level {
            case .avx512:
                ok.value[part] = TensorGEMMAVX512.convWeightGradDirectSerial(rows: rows, dY: g.a, image: img,
                    batch: x.batch, channels: x.channels, h: x.height, w: x.width, bs: x.batchStride,
                    cs: x.channelStride, kernel: g.kernel, pad: g.pad, dW: dW)
            case .avx2:
                ok.value[part] = TensorGEMMAVX2.convWeightGradDirectSerial(rows: rows, dY: g.a, image: img,
                    batch: x.batch, channels: x.channels, h: x.height, w: x.width, bs: x.batchStride,
                    cs: x.channelStride, kernel: g.kernel, pad: g.pad, dW: dW)
            case .baseline:
                ok.value[part] = TensorGEMMBaseline.convWeightGradDirectSerial(rows: rows, dY: g.a, image: img,
                    batch: x.batch, channels: x.channels, h: x.height, w: x.width, bs: x.batchStride,
                    cs: x.channelStride, kernel: g.kernel, pad: g.pad, dW: dW)
            }
        }
        return (0..<parts).allSatisfy { base[$0] }
    }
}
