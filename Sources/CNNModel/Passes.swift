// Forward and backward passes of one batch through the CNN, on the preallocated workspace.
//
// Data flow for a batch of n images (shapes per block i with input h×w, Cin→Cout):
//   forward:  x(NCHW for i=0, else CNHW) --conv+bias+ReLU--> act[i] [Cout, n*h*w]
//             --maxpool2--> pool[i] [Cout, n*(h/2)*(w/2)] ... pool[3] --flatten--> feat [n, F]
//             --linear--> logits [n, K]
//   backward: dLogits → (fc) dW, db, dFeat → dPool (pool[3]'s gradient) → for i = 3...0:
//             maxpool+ReLU backward (fused) → dAct; conv backward → dW_i, db_i, dPool (pool[i-1]'s)
import Tensor

extension CNN {
    /// Forward pass of `n` images (NCHW at `images`) into ws.logits ([n, K]).
    func forward(_ images: UnsafePointer<Float>, n: Int, ws: Workspace) {
        let t = timings
        t?.start()
        var x = images
        var layout = ImageLayout.nchw(n, channels, height, width)
        for (i, b) in blocks.enumerated() {
            let w = params + entries[2 * i].offset, bias = params + entries[2 * i + 1].offset
            conv2dForward(x, layout, b.conv, weight: w, bias: bias, output: ws.act[i].pointer, relu: true,
                          threads: threads, gemmWorkspace: gemmWorkspace)
            t?.mark(2 * i)
            maxPool2Forward(ws.act[i].pointer, b.actLayout(n), output: ws.pool[i].pointer, b.poolLayout(n),
                            threads: threads)
            t?.mark(2 * i + 1)
            x = UnsafePointer(ws.pool[i].pointer)
            layout = b.poolLayout(n)
        }
        // Flatten CNHW [256, n*s] into [n, 256*s] (PyTorch's view(n, -1) of NCHW).
        let s = layout.plane, c = layout.channels, feat = ws.feat.pointer
        for img in 0..<n {
            for ch in 0..<c {
                (feat + img * features + ch * s).update(from: x + ch * n * s + img * s, count: s)
            }
        }
        let fc = entries.count - 2
        linearForward(feat, batch: n, inFeatures: features, outFeatures: classes,
                      weight: params + entries[fc].offset, bias: params + entries[fc + 1].offset,
                      output: ws.logits.pointer, threads: threads, gemmWorkspace: gemmWorkspace)
    }

    /// Backward pass after `forward` of the same n images: loss of ws.logits against `labels`,
    /// gradients of every parameter into `grads` (overwritten).
    func backward(_ images: UnsafePointer<Float>, labels: UnsafePointer<Int32>, n: Int,
                  ws: Workspace) -> CrossEntropyResult {
        let t = timings
        let ce = softmaxCrossEntropy(ws.logits.pointer, labels: labels, batch: n, classes: classes,
                                     logitsGrad: ws.dLogits.pointer)
        let fc = entries.count - 2
        linearBackward(ws.feat.pointer, batch: n, inFeatures: features, outFeatures: classes,
                       weight: params + entries[fc].offset, outGrad: ws.dLogits.pointer,
                       weightGrad: grads + entries[fc].offset, biasGrad: grads + entries[fc + 1].offset,
                       inputGrad: ws.dFeat.pointer, threads: threads, gemmWorkspace: gemmWorkspace)
        // Unflatten dFeat [n, 256*s] into dPool as CNHW [256, n*s].
        let last = blocks[blocks.count - 1]
        let s = (last.height / 2) * (last.width / 2), c = last.outChannels
        for img in 0..<n {
            for ch in 0..<c {
                (ws.dPool.pointer + ch * n * s + img * s).update(from: ws.dFeat.pointer + img * features + ch * s, count: s)
            }
        }
        let base = 2 * blocks.count
        t?.mark(base)
        for i in stride(from: blocks.count - 1, through: 0, by: -1) {
            let b = blocks[i], phase = base + 1 + 2 * (blocks.count - 1 - i)
            maxPool2Backward(input: ws.act[i].pointer, b.actLayout(n), output: ws.pool[i].pointer,
                             outGrad: ws.dPool.pointer, b.poolLayout(n), inputGrad: ws.dAct.pointer,
                             reluMasked: true, threads: threads)
            t?.mark(phase)
            let input: UnsafePointer<Float> = i == 0 ? images : UnsafePointer(ws.pool[i - 1].pointer)
            let layout = i == 0 ? ImageLayout.nchw(n, channels, height, width) : blocks[i - 1].poolLayout(n)
            conv2dBackward(input, layout, b.conv, weight: params + entries[2 * i].offset,
                           outGrad: ws.dAct.pointer, weightGrad: grads + entries[2 * i].offset,
                           biasGrad: grads + entries[2 * i + 1].offset,
                           inputGrad: i == 0 ? nil : ws.dPool.pointer,
                           threads: threads, gemmWorkspace: gemmWorkspace)
            t?.mark(phase + 1)
        }
        return ce
    }
}
