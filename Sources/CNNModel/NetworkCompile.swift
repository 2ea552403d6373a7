// Compiles resolved layers into the op list a Network runs, and the backward routing.
//   1. each layer appends its ops (Layers/<Kind>.swift `compile`: one op per layer; a residual
//      block its body's ops, its shortcut's ops, then an Add);
//   2. fusions that keep the reference CNN's fast paths: a ReLU whose input is a convolution's
//      output used by nothing else is folded into that convolution; a 2x2/stride-2 max pool that
//      alone reads such a fused output applies the ReLU mask in its own backward;
//   3. if an op that needs CNHW reads the NCHW network input, one copy op converts it first;
//   4. gradient routing: walking ops in reverse, the first op to produce a value's gradient
//      writes it directly, later ones write a scratch buffer that is then added in.
import Tensor

/// Where one input gradient of an op goes during backward.
enum GradientRoute {
    /// Not needed (the network input).
    case none
    /// Written straight into the value's gradient buffer.
    case direct(Int)
    /// Written into scratch `slot`, then added into value `value`'s gradient.
    case accumulate(value: Int, slot: Int)
}

struct CompiledNetwork {
    var ops: [Op]
    /// Per-example shape of every value (value 0 is the input).
    var shapes: [TensorShape]
    /// routes[i][k]: the route of op i's k-th input gradient.
    var routes: [[GradientRoute]]
    /// Value holding the logits.
    var logits: Int
    /// gradSlot[v]: which shared gradient buffer holds value v's gradient (-1: none, the input).
    /// Values whose gradients are never live at once share a buffer (a chain alternates two), as
    /// the reference CNN's hand-written passes did.
    var gradSlot: [Int]
    /// Number of gradient buffers.
    var slotCount: Int
}

func compile(_ layers: [ResolvedLayer], input: TensorShape) -> CompiledNetwork {
    var emitter = OpEmitter(shapes: [input])
    var logits = emitter.emit(layers, from: 0)
    var ops = emitter.ops, shapes = emitter.shapes
    func newValue(_ s: TensorShape) -> Int { shapes.append(s); return shapes.count - 1 }

    // 2. Fusions.
    func consumers(_ v: Int) -> [Op] { ops.filter { $0.inputs.contains(v) } }
    var i = 0
    while i < ops.count {
        if let relu = ops[i] as? ReLUOp, let conv = ops.first(where: { $0.output == relu.inputs[0] }) as? ConvOp,
           !conv.relu, consumers(conv.output).count == 1 {
            conv.relu = true
            conv.name += "+relu"
            let dead = relu.output
            for op in ops { op.inputs = op.inputs.map { $0 == dead ? conv.output : $0 } }
            if logits == dead { logits = conv.output }
            ops.remove(at: i)
            continue
        }
        i += 1
    }
    for op in ops {
        if let pool = op as? MaxPoolOp, pool.fast, let conv = ops.first(where: { $0.output == pool.inputs[0] }) as? ConvOp,
           conv.relu, consumers(conv.output).count == 1 {
            pool.reluMasked = true
            conv.maskApplied = true
        }
    }
    // 3. The NCHW input, read by an op that assumes CNHW.
    if case .image = input, ops.contains(where: { op in op.inputs.contains(0) && !op.readsNCHWInput }) {
        let v = newValue(input)
        for op in ops { op.inputs = op.inputs.map { $0 == 0 ? v : $0 } }
        ops.insert(ToCNHWOp(name: "input to CNHW", inputs: [0], output: v, inShape: input, outShape: input), at: 0)
    }
    for (k, op) in ops.enumerated() { op.index = k }

    // 4. Gradient routing.
    var written = Set<Int>()
    var routes = [[GradientRoute]](repeating: [], count: ops.count)
    for k in stride(from: ops.count - 1, through: 0, by: -1) {
        routes[k] = ops[k].inputs.enumerated().map { slot, v in
            if v == 0 { return .none }
            if written.insert(v).inserted { return .direct(v) }
            return .accumulate(value: v, slot: slot)
        }
    }
    // 5. Gradient buffers by liveness: value v's gradient lives from its first write (backward of
    // its last consumer, or the loss for the logits) until its producer's backward is done.
    var slot = [Int](repeating: -1, count: shapes.count)
    var free: [Int] = [], slotCount = 0
    func acquire(_ v: Int) {
        guard v != 0, slot[v] < 0 else { return }
        if let s = free.popLast() { slot[v] = s } else { slot[v] = slotCount; slotCount += 1 }
    }
    acquire(logits)
    for k in stride(from: ops.count - 1, through: 0, by: -1) {
        for v in ops[k].inputs { acquire(v) }
        if slot[ops[k].output] >= 0 { free.append(slot[ops[k].output]) }
    }
    return CompiledNetwork(ops: ops, shapes: shapes, routes: routes, logits: logits, gradSlot: slot, slotCount: slotCount)
}
