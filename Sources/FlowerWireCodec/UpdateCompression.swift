// UpdateCompression: lossy encodings of a client's model update (local weights minus the weights
// it was sent), per tensor. fp16 is IEEE binary16 with round-to-nearest-even; int8 is a per-tensor
// scale (max |x| / 127) and stochastic rounding, so the decoded update is unbiased; int4 is the
// same with a per-tensor scale max |x| / 7 and two values per byte; topk keeps the largest
// fraction of each tensor's coordinates, or the same total over the whole update (global), with
// a larger fraction in warm-up rounds, as u32 indices or LEB128 index gaps and float32 values (or
// int8 steps of a per-tensor scale, stochastically rounded), with the client's residual (error
// feedback) added to its next update. Decoding checks
// every peer-supplied count and scale before it allocates or multiplies. The top-k
// coder is in UpdateCompressionTopK.swift.
import FlowerBase
import FlowerCore
#if canImport(Glibc)
import Glibc
#endif

/// How a client encodes its update (`--update-compression`).
public enum UpdateCompression: Sendable, Equatable, CustomStringConvertible {
    /// float32, as the weights themselves.
    case none
    /// IEEE binary16 per element (2 bytes), round-to-nearest-even.
    case fp16
    /// One signed byte per element in [-127, 127] times a per-tensor float32 scale, stochastically rounded.
    case int8
    /// Two signed nibbles per byte in [-7, 7] times a per-tensor float32 scale, stochastically rounded.
    case int4
    /// The largest `fraction` of each tensor's coordinates by |value| (at least one), as indices
    /// and float32 values. With `errorFeedback` the client keeps what it did not send (the
    /// residual) and adds it to its next update. With `global` the same total number of
    /// coordinates (the sum of every tensor's ⌈fraction × count⌉) is chosen over the whole update
    /// at once, so a tensor may carry anything from none to all of its coordinates. With
    /// `warmupRounds` R > 0, rounds 1…R send the larger fraction fraction^(r / (R + 1)) (DGC's
    /// exponential warm-up). With `varintIndices` the indices travel as LEB128 gaps
    /// (`UPDATE_ENCODING_TOPK_VARINT`) instead of u32. With `int8Values` (which implies
    /// `varintIndices`) the kept values travel as int8 steps of a per-tensor scale (the largest
    /// kept |value| / 127), stochastically rounded (`UPDATE_ENCODING_TOPK_INT8`); under error
    /// feedback the rounding error stays in the residual.
    case topk(fraction: Double, errorFeedback: Bool, global: Bool = false, warmupRounds: Int = 0, varintIndices: Bool = false,
              int8Values: Bool = false)

    /// The wire encoding without top-k's parameters: what a FitRes declares.
    public var encodingName: String {
        switch self {
        case .none: return "none"
        case .fp16: return "fp16"
        case .int8: return "int8"
        case .int4: return "int4"
        case .topk(_, _, _, _, let varint, let int8): return int8 ? "topk-int8" : varint ? "topk-varint" : "topk"
        }
    }

    /// As given on the command line: `none`, `fp16`, `int8`, `int4` or
    /// `topk:F[,noef][,global][,warmup=R][,varint|,int8]`.
    public var description: String {
        guard case .topk(let fraction, let errorFeedback, let global, let warmup, let varint, let int8) = self else { return encodingName }
        return "topk:\(fraction)" + (errorFeedback ? "" : ",noef") + (global ? ",global" : "")
            + (warmup > 0 ? ",warmup=\(warmup)" : "") + (int8 ? ",int8" : varint ? ",varint" : "")
    }

    /// The forms `--update-compression` accepts.
    public static let syntax = "none|fp16|int8|int4|topk:F[,noef][,global][,warmup=R][,varint][,int8]"

    /// The largest number of warm-up rounds `topk:F,warmup=R` accepts.
    public static let maxWarmupRounds = 100

    /// Under top-k, the fraction sent in `round` (counted from 1): fraction^(r / (R + 1)) in the
    /// R warm-up rounds, the fraction itself after them (and for round 0, which no fit uses).
    /// Other encodings: 1.
    public func topkFraction(round: Int) -> Double {
        guard case .topk(let fraction, _, _, let warmup, _, _) = self else { return 1 }
        guard warmup > 0, round >= 1, round <= warmup else { return fraction }
        return min(1, max(fraction, pow(fraction, Double(round) / Double(warmup + 1))))
    }

    /// Parses `none`, `fp16`, `int8`, `int4` or `topk:F` (0 < F <= 1) followed by any of the
    /// options `,noef` (error feedback off), `,global`, `,warmup=R`, `,varint` and `,int8` (int8
    /// values, varint indices), each at most once.
    public init(parsing text: String) throws {
        switch text {
        case "none": self = .none
        case "fp16": self = .fp16
        case "int8": self = .int8
        case "int4": self = .int4
        default:
            guard text.hasPrefix("topk:") else {
                throw WireError.badParameters("unknown update compression \"\(text)\": use none, fp16, int8, int4 or topk:F[,noef][,global][,warmup=R][,varint][,int8] (0 < F <= 1, e.g. topk:0.01)")
            }
            let parts = text.dropFirst(5).split(separator: ",", omittingEmptySubsequences: false)
            let fraction = parts.first ?? ""
            guard let f = Double(fraction), f.isFinite, f > 0, f <= 1 else {
                throw WireError.badParameters("top-k fraction \"\(fraction)\" is not a number in (0, 1]: topk:0.01 keeps the largest 1% of each tensor's update (options after it: ,noef ,global ,warmup=R ,varint ,int8)")
            }
            var errorFeedback = true, global = false, warmup = 0, varint = false, int8 = false
            var seen = Set<String>()
            for option in parts.dropFirst() {
                let key = option.hasPrefix("warmup=") ? "warmup" : String(option)
                guard seen.insert(key).inserted else {
                    throw WireError.badParameters("top-k option \"\(key)\" given twice in \"\(text)\"")
                }
                switch option {
                case "noef": errorFeedback = false
                case "global": global = true
                case "varint": varint = true
                case "int8": int8 = true
                default:
                    guard option.hasPrefix("warmup="), let r = Int(option.dropFirst(7)), r >= 0, r <= Self.maxWarmupRounds else {
                        throw WireError.badParameters("unknown top-k option \"\(option)\" in \"\(text)\": use noef (error feedback off), global (select over the whole update), warmup=R (0...\(Self.maxWarmupRounds) rounds of larger fractions first), varint (indices as LEB128 gaps) or int8 (values as stochastically rounded int8 steps, indices as LEB128 gaps)")
                    }
                    warmup = r
                }
            }
            self = .topk(fraction: f, errorFeedback: errorFeedback, global: global, warmupRounds: warmup, varintIndices: varint || int8,
                         int8Values: int8)
        }
    }

    /// Bytes on the wire for a tensor of `count` elements (int4 packs two per byte); top-k: the
    /// most a tensor takes after warm-up when chosen per tensor with u32 indices (varint indices
    /// take 1 to 5 bytes each instead of 4; with int8 values, at most 5 + 1 bytes a coordinate).
    public func bytes(count: Int) -> Int {
        switch self {
        case .none: return 4 * count
        case .fp16: return 2 * count
        case .int8: return count
        case .int4: return (count + 1) / 2
        case .topk(let fraction, _, _, _, _, let int8): return 4 + (int8 ? 6 : 8) * UpdateCodec.topkCount(count, fraction: fraction)
        }
    }
}

/// How the server sends the model in FitIns and EvaluateIns (`--broadcast-compression`).
public enum BroadcastCompression: String, Sendable, Equatable, CaseIterable, CustomStringConvertible {
    /// float32 tensors.
    case none
    /// IEEE binary16 tensors (DTYPE_FLOAT16), rounded to nearest: half the download; clients
    /// decode them to float32 and train from the rounded weights.
    case fp16

    public var description: String { rawValue }
}

/// One tensor of a compressed update: `count` elements encoded in `data`, with `scale` for int8
/// (0 for fp16).
public struct CompressedTensor: Sendable, Equatable {
    /// Number of elements the sender declares; must equal the tensor's shape product.
    public var count: Int
    /// int8/int4: the value of one quantisation step (max |x| / 127, max |x| / 7); topk-int8: the
    /// step of its kept values (their max |x| / 127); fp16, topk, topk-varint: 0.
    public var scale: Float
    /// fp16: 2 bytes per element, little-endian; int8: one two's-complement byte per element;
    /// int4: element 2i in the low nibble of byte i, 2i + 1 in its high nibble (two's complement);
    /// topk: k (u32), then k strictly increasing u32 indices, then k float32 values, little-endian;
    /// topk-varint: k (u32), then k LEB128 varints (the first index, then each index minus the
    /// previous one minus 1), then k float32 values; topk-int8: k (u32), k LEB128 gaps as
    /// topk-varint, then k int8 steps of `scale`.
    public var data: [UInt8]

    public init(count: Int, scale: Float, data: [UInt8]) {
        self.count = count
        self.scale = scale
        self.data = data
    }
}

/// A whole compressed update: the encoding and one tensor per model tensor, in layout order.
public struct CompressedUpdate: Sendable, Equatable {
    public var encoding: UpdateCompression
    public var tensors: [CompressedTensor]

    public init(encoding: UpdateCompression, tensors: [CompressedTensor]) {
        self.encoding = encoding
        self.tensors = tensors
    }
}

/// Encoders and checked decoders of compressed updates.
public enum UpdateCodec {
    // MARK: fp16

    /// `values` as little-endian IEEE binary16, rounded to nearest (ties to even). Throws when an
    /// element is not finite or overflows binary16 (|x| > 65504 after rounding).
    public static func encodeFP16(_ values: ArraySlice<Float>, name: String = "update") throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: values.count * 2)
        var j = 0
        for x in values {
            let h = Float16(x)
            guard h.isFinite else {
                throw WireError.cannotEncode("tensor \(name): value \(x) does not fit fp16 (|x| <= 65504); use --update-compression int8 or none")
            }
            let bits = h.bitPattern
            out[j] = UInt8(truncatingIfNeeded: bits)
            out[j + 1] = UInt8(truncatingIfNeeded: bits >> 8)
            j += 2
        }
        return out
    }

    /// The float32 values of fp16 `data` declaring `count` elements; `expected` is the tensor's
    /// shape product. Refuses a count that does not match, a length that is not 2 × count, and
    /// NaN or infinite elements.
    public static func decodeFP16(_ t: CompressedTensor, expected: Int, name: String) throws -> [Float] {
        guard t.count == expected else {
            throw WireError.badParameters("tensor \(name): compressed update declares \(t.count) elements, its shape holds \(expected)")
        }
        guard t.data.count == expected * 2 else {
            throw WireError.badParameters("tensor \(name): fp16 update carries \(t.data.count) bytes for \(expected) elements (needs \(expected * 2))")
        }
        guard t.scale == 0 else {
            throw WireError.badParameters("tensor \(name): fp16 update declares scale \(t.scale); fp16 carries no scale (0)")
        }
        var out = [Float](repeating: 0, count: expected)
        for i in 0 ..< expected {
            let bits = UInt16(t.data[2 * i]) | UInt16(t.data[2 * i + 1]) << 8
            let h = Float16(bitPattern: bits)
            guard h.isFinite else {
                throw WireError.badParameters("tensor \(name): fp16 element \(i) is not finite (0x\(String(bits, radix: 16)))")
            }
            out[i] = Float(h)
        }
        return out
    }

    // MARK: int8 and int4

    /// Stochastic rounding onto the steps -levels…levels of the per-tensor scale max|x| / levels:
    /// each value x/scale is rounded up with probability equal to its fractional part, so
    /// E[step × scale] = x. Hands each element's step to `emit` and returns the scale (0 for an
    /// all-zero tensor, when nothing is emitted). Throws on a NaN or infinite element.
    static func stochasticSteps(_ values: ArraySlice<Float>, levels: Float, rng: inout SplitMix64, name: String,
                                        emit: (Int, Int8) -> Void) throws -> Float {
        var maxAbs: Float = 0
        for x in values {
            guard x.isFinite else {
                throw WireError.cannotEncode("tensor \(name): update element \(x) is not finite; the local training diverged")
            }
            maxAbs = max(maxAbs, abs(x))
        }
        guard maxAbs > 0 else { return 0 }
        let scale = maxAbs / levels
        var j = 0
        for x in values {
            let q = x / scale
            let lo = q.rounded(.down)
            // A uniform draw in [0, 1) with 24 bits: round up with probability q - lo.
            let u = Float(rng.next() >> 40) * 0x1p-24
            emit(j, Int8(min(levels, max(-levels, lo + (u < q - lo ? 1 : 0)))))
            j += 1
        }
        return scale
    }

    /// The checks the quantised encodings (int8, int4, top-k int8) make before decoding: the
    /// declared count is the shape's, the data is `bytes` long (nil: the caller checks the length,
    /// as top-k's depends on its indices), the scale is finite and non-negative.
    static func checkQuantized(_ t: CompressedTensor, expected: Int, bytes: Int?, kind: String, name: String) throws {
        guard t.count == expected else {
            throw WireError.badParameters("tensor \(name): compressed update declares \(t.count) elements, its shape holds \(expected)")
        }
        if let bytes, t.data.count != bytes {
            throw WireError.badParameters("tensor \(name): \(kind) update carries \(t.data.count) bytes for \(expected) elements (needs \(bytes))")
        }
        guard t.scale.isFinite, t.scale >= 0 else {
            throw WireError.badParameters("tensor \(name): \(kind) scale \(t.scale) is not a finite non-negative number")
        }
    }

    /// An int8 step's value, step × `scale`; the byte -128 (outside the symmetric range [-127, 127]
    /// both int8 encodings use) is refused, naming it as `what` says.
    @inline(__always)
    static func int8Value(_ byte: UInt8, scale: Float, what: @autoclosure () -> String) throws -> Float {
        let step = Int8(bitPattern: byte)
        guard step != -128 else { throw WireError.badParameters("\(what()) is -128; the encoding's range is [-127, 127]") }
        return Float(step) * scale
    }

    /// `values` as int8 steps in [-127, 127] of the scale max|x| / 127, stochastically rounded
    /// (E[decoded] = x). An all-zero tensor has scale 0. Throws on a NaN or infinite element.
    public static func encodeInt8(_ values: ArraySlice<Float>, rng: inout SplitMix64, name: String = "update") throws -> CompressedTensor {
        var data = [UInt8](repeating: 0, count: values.count)
        let scale = try stochasticSteps(values, levels: 127, rng: &rng, name: name) { j, r in data[j] = UInt8(bitPattern: r) }
        return CompressedTensor(count: values.count, scale: scale, data: data)
    }

    /// The float32 values of an int8 tensor; `expected` is the tensor's shape product. Refuses a
    /// count that does not match, a data length other than the count, a scale that is NaN,
    /// infinite or negative, and the byte -128 (outside the symmetric range).
    public static func decodeInt8(_ t: CompressedTensor, expected: Int, name: String) throws -> [Float] {
        try checkQuantized(t, expected: expected, bytes: expected, kind: "int8", name: name)
        var out = [Float](repeating: 0, count: expected)
        for i in 0 ..< expected {
            out[i] = try int8Value(t.data[i], scale: t.scale, what: "tensor \(name): int8 element \(i)")
        }
        return out
    }

    /// `values` as signed 4-bit steps in [-7, 7] of a per-tensor scale max|x| / 7, stochastically
    /// rounded like int8 (E[decoded] = x), packed two per byte: element 2i in the low nibble of
    /// byte i, element 2i + 1 in the high nibble; an odd count leaves the last high nibble 0.
    public static func encodeInt4(_ values: ArraySlice<Float>, rng: inout SplitMix64, name: String = "update") throws -> CompressedTensor {
        var data = [UInt8](repeating: 0, count: (values.count + 1) / 2)
        let scale = try stochasticSteps(values, levels: 7, rng: &rng, name: name) { j, r in
            let nibble = UInt8(bitPattern: r) & 0x0F
            data[j >> 1] |= j & 1 == 0 ? nibble : nibble << 4
        }
        return CompressedTensor(count: values.count, scale: scale, data: data)
    }

    /// The float32 values of an int4 tensor; `expected` is the tensor's shape product. Refuses a
    /// count that does not match, a data length other than ⌈count / 2⌉, a scale that is NaN,
    /// infinite or negative, the nibble -8 (outside the symmetric range) and a non-zero padding
    /// nibble after an odd count.
    public static func decodeInt4(_ t: CompressedTensor, expected: Int, name: String) throws -> [Float] {
        try checkQuantized(t, expected: expected, bytes: (expected + 1) / 2, kind: "int4", name: name)
        if expected & 1 == 1, t.data[expected >> 1] >> 4 != 0 {
            throw WireError.badParameters("tensor \(name): int4 padding nibble after element \(expected - 1) is not 0")
        }
        var out = [Float](repeating: 0, count: expected)
        for i in 0 ..< expected {
            let nibble = i & 1 == 0 ? t.data[i >> 1] & 0x0F : t.data[i >> 1] >> 4
            guard nibble != 0x8 else {
                throw WireError.badParameters("tensor \(name): int4 element \(i) is -8; the encoding's range is [-7, 7]")
            }
            // Sign-extend the nibble: 0x9...0xF are -7...-1.
            out[i] = Float(Int8(bitPattern: nibble << 4) >> 4) * t.scale
        }
        return out
    }

    // MARK: whole updates

    /// The update `local − global`, one compressed tensor per tensor of the layout. int8 and int4 draw
    /// their rounding from `seed` (the client's seed, derived per round by the caller). Top-k
    /// without a residual to carry: as `compress(…, residual:)` starting from none.
    public static func compress(local: Parameters, global: Parameters, as mode: UpdateCompression,
                                seed: UInt64, round: Int = 0) throws -> [CompressedTensor] {
        var residual: [Float] = []
        return try compress(local: local, global: global, as: mode, seed: seed, round: round, residual: &residual)
    }

    /// As `compress(local:global:as:seed:)`; under top-k with error feedback the update sent is
    /// the top-k of `local − global + residual`, and `residual` becomes what was not sent (it
    /// starts from zeros when its size is not the model's). Other encodings leave it alone.
    /// `round` (from 1) sets top-k's fraction during a warm-up.
    public static func compress(local: Parameters, global: Parameters, as mode: UpdateCompression,
                                seed: UInt64, round: Int = 0, residual: inout [Float]) throws -> [CompressedTensor] {
        guard mode != .none else {
            throw WireError.cannotEncode("update compression is none: send the weights as float32")
        }
        if let why = local.layoutMismatch(against: global) {
            throw WireError.badParameters("local weights \(why); cannot form the update")
        }
        if case .topk(_, let errorFeedback, let isGlobal, _, let varint, let int8Values) = mode {
            if errorFeedback, residual.count != local.count {
                residual = [Float](repeating: 0, count: local.count)
            }
            var acc = zip(local.values, global.values).map { $0 - $1 }
            if errorFeedback {
                for i in acc.indices { acc[i] += residual[i] }
            }
            let fraction = mode.topkFraction(round: round)
            var kept: [[Int]]
            if isGlobal {
                // One selection over the whole update, then split by tensor (indices are ascending).
                let all = try topkIndices(acc, keep: topkBudget(local.layout, mode: mode, round: round), name: "update")
                kept = Array(repeating: [], count: local.layout.count)
                var t = 0
                for i in all {
                    while i >= local.layout[t].offset + local.layout[t].count { t += 1 }
                    kept[t].append(i - local.layout[t].offset)
                }
            } else {
                kept = try local.layout.map { spec in
                    try topkIndices(Array(acc[spec.offset ..< spec.offset + spec.count]), keep: topkCount(spec.count, fraction: fraction), name: spec.name)
                }
            }
            var out: [CompressedTensor] = []
            out.reserveCapacity(local.layout.count)
            // int8 values: what the server will decode for each kept coordinate, tensor by tensor.
            var decodedSent: [[Float]] = []
            var rng = SplitMix64(seed: seed)
            for (spec, indices) in zip(local.layout, kept) {
                let values = Array(acc[spec.offset ..< spec.offset + spec.count])
                if int8Values {
                    let (tensor, decoded) = try encodeTopKInt8(values, kept: indices, rng: &rng, name: spec.name)
                    out.append(tensor)
                    decodedSent.append(decoded)
                } else {
                    out.append(encodeTopK(values, kept: indices, varint: varint))
                }
            }
            if errorFeedback {
                // What was sent leaves the residual; everything else waits for the next round. With
                // int8 values the rounding error of a sent coordinate (its value minus the step
                // times the scale) stays behind too.
                residual = acc
                for (t, (spec, indices)) in zip(local.layout, kept).enumerated() {
                    for (j, i) in indices.enumerated() {
                        residual[spec.offset + i] = int8Values ? acc[spec.offset + i] - decodedSent[t][j] : 0
                    }
                }
            }
            return out
        }
        var rng = SplitMix64(seed: seed)
        var out: [CompressedTensor] = []
        out.reserveCapacity(local.layout.count)
        for spec in local.layout {
            let range = spec.offset ..< spec.offset + spec.count
            let delta = zip(local.values[range], global.values[range]).map { $0 - $1 }
            switch mode {
            case .fp16:
                out.append(CompressedTensor(count: spec.count, scale: 0, data: try encodeFP16(delta[...], name: spec.name)))
            case .int8:
                out.append(try encodeInt8(delta[...], rng: &rng, name: spec.name))
            case .int4:
                out.append(try encodeInt4(delta[...], rng: &rng, name: spec.name))
            case .topk, .none:
                break
            }
        }
        return out
    }

    /// `global` plus the decoded update: the weights the client trained, as the strategy sees
    /// them. Every tensor is checked against `global`'s layout before it is decoded; under top-k,
    /// `mode` is the receiver's (its fraction in `round`, and whether selection is global, bound
    /// how many coordinates a tensor and the whole update may carry) and `varintIndices` and
    /// `int8Values` say which form the sender declared (topk-int8: both).
    public static func decompress(_ tensors: [CompressedTensor], as mode: UpdateCompression,
                                  onto global: Parameters, round: Int = 0, varintIndices: Bool = false,
                                  int8Values: Bool = false) throws -> Parameters {
        guard mode != .none else {
            throw WireError.badParameters("a compressed update arrived although update compression is none")
        }
        guard tensors.count == global.layout.count else {
            throw WireError.badParameters("compressed update has \(tensors.count) tensors, the model \(global.layout.count)")
        }
        var result = global
        let budget = topkBudget(global.layout, mode: mode, round: round)
        var carried = 0
        for (spec, t) in zip(global.layout, tensors) {
            let delta: [Float]
            switch mode {
            case .fp16: delta = try decodeFP16(t, expected: spec.count, name: spec.name)
            case .int8: delta = try decodeInt8(t, expected: spec.count, name: spec.name)
            case .int4: delta = try decodeInt4(t, expected: spec.count, name: spec.name)
            case .topk:
                let maxKept = min(topkMaxKept(spec.count, mode: mode, round: round), budget - carried)
                let (values, kept) = int8Values
                    ? try decodeTopKInt8Counted(t, expected: spec.count, maxKept: maxKept, name: spec.name)
                    : try decodeTopKCounted(t, expected: spec.count, maxKept: maxKept, varint: varintIndices, name: spec.name)
                carried += kept
                delta = values
            case .none: throw WireError.badParameters("a compressed update arrived although update compression is none")
            }
            for i in 0 ..< spec.count { result.values[spec.offset + i] += delta[i] }
        }
        return result
    }
}
