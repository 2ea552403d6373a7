// UpdateCompression: lossy encodings of a client's model update (local weights minus the weights
// it was sent), per tensor. fp16 is IEEE binary16 with round-to-nearest-even; int8 is a per-tensor
// scale (max |x| / 127) and stochastic rounding, so the decoded update is unbiased; int4 is the
// same with a per-tensor scale max |x| / 7 and two values per byte; topk keeps the largest
// fraction of each tensor's coordinates (u32 indices and float32 values), with the client's
// residual (error feedback) added to its next update. Decoding checks
// every peer-supplied count and scale before it allocates or multiplies.
import FlowerBase
import FlowerCore

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
    /// The largest `fraction` of each tensor's coordinates by |value| (at least one), as u32
    /// indices and float32 values. With `errorFeedback` the client keeps what it did not send
    /// (the residual) and adds it to its next update.
    case topk(fraction: Double, errorFeedback: Bool)

    /// The wire encoding without top-k's parameters: what a FitRes declares.
    public var encodingName: String {
        switch self {
        case .none: return "none"
        case .fp16: return "fp16"
        case .int8: return "int8"
        case .int4: return "int4"
        case .topk: return "topk"
        }
    }

    /// As given on the command line: `none`, `fp16`, `int8`, `int4`, `topk:F` or `topk:F,noef`.
    public var description: String {
        guard case .topk(let fraction, let errorFeedback) = self else { return encodingName }
        return "topk:\(fraction)" + (errorFeedback ? "" : ",noef")
    }

    /// The forms `--update-compression` accepts.
    public static let syntax = "none|fp16|int8|int4|topk:F[,noef]"

    /// Parses `none`, `fp16`, `int8`, `int4`, `topk:F` (0 < F <= 1) or `topk:F,noef` (error
    /// feedback off).
    public init(parsing text: String) throws {
        switch text {
        case "none": self = .none
        case "fp16": self = .fp16
        case "int8": self = .int8
        case "int4": self = .int4
        default:
            guard text.hasPrefix("topk:") else {
                throw WireError.badParameters("unknown update compression \"\(text)\": use none, fp16, int8, int4, topk:F or topk:F,noef (0 < F <= 1, e.g. topk:0.01)")
            }
            var fraction = text.dropFirst(5)
            var errorFeedback = true
            if fraction.hasSuffix(",noef") {
                errorFeedback = false
                fraction = fraction.dropLast(5)
            }
            guard let f = Double(fraction), f.isFinite, f > 0, f <= 1 else {
                throw WireError.badParameters("top-k fraction \"\(fraction)\" is not a number in (0, 1]: topk:0.01 keeps the largest 1% of each tensor's update (add ,noef to switch error feedback off)")
            }
            self = .topk(fraction: f, errorFeedback: errorFeedback)
        }
    }

    /// Bytes on the wire for a tensor of `count` elements (int4 packs two per byte).
    public func bytes(count: Int) -> Int {
        switch self {
        case .none: return 4 * count
        case .fp16: return 2 * count
        case .int8: return count
        case .int4: return (count + 1) / 2
        case .topk(let fraction, _): return 4 + 8 * UpdateCodec.topkCount(count, fraction: fraction)
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
    /// int8/int4: the value of one quantisation step (max |x| / 127, max |x| / 7); fp16, topk: 0.
    public var scale: Float
    /// fp16: 2 bytes per element, little-endian; int8: one two's-complement byte per element;
    /// int4: element 2i in the low nibble of byte i, 2i + 1 in its high nibble (two's complement);
    /// topk: k (u32), then k strictly increasing u32 indices, then k float32 values, little-endian.
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

    // MARK: int8

    /// `values` as int8 with scale max|x| / 127 and stochastic rounding: each value x/scale is
    /// rounded up with probability equal to its fractional part, so E[decoded] = x. An all-zero
    /// tensor has scale 0. Throws on a NaN or infinite element.
    public static func encodeInt8(_ values: ArraySlice<Float>, rng: inout SplitMix64, name: String = "update") throws -> CompressedTensor {
        var maxAbs: Float = 0
        for x in values {
            guard x.isFinite else {
                throw WireError.cannotEncode("tensor \(name): update element \(x) is not finite; the local training diverged")
            }
            maxAbs = max(maxAbs, abs(x))
        }
        var data = [UInt8](repeating: 0, count: values.count)
        guard maxAbs > 0 else { return CompressedTensor(count: values.count, scale: 0, data: data) }
        let scale = maxAbs / 127
        var j = 0
        for x in values {
            let q = x / scale
            let lo = q.rounded(.down)
            // A uniform draw in [0, 1) with 24 bits: round up with probability q - lo.
            let u = Float(rng.next() >> 40) * 0x1p-24
            var r = lo + (u < q - lo ? 1 : 0)
            r = min(127, max(-127, r))
            data[j] = UInt8(bitPattern: Int8(r))
            j += 1
        }
        return CompressedTensor(count: values.count, scale: scale, data: data)
    }

    /// The float32 values of an int8 tensor; `expected` is the tensor's shape product. Refuses a
    /// count that does not match, a data length other than the count, a scale that is NaN,
    /// infinite or negative, and the byte -128 (outside the symmetric range).
    public static func decodeInt8(_ t: CompressedTensor, expected: Int, name: String) throws -> [Float] {
        guard t.count == expected else {
            throw WireError.badParameters("tensor \(name): compressed update declares \(t.count) elements, its shape holds \(expected)")
        }
        guard t.data.count == expected else {
            throw WireError.badParameters("tensor \(name): int8 update carries \(t.data.count) bytes for \(expected) elements")
        }
        guard t.scale.isFinite, t.scale >= 0 else {
            throw WireError.badParameters("tensor \(name): int8 scale \(t.scale) is not a finite non-negative number")
        }
        var out = [Float](repeating: 0, count: expected)
        for i in 0 ..< expected {
            let v = Int8(bitPattern: t.data[i])
            guard v != -128 else {
                throw WireError.badParameters("tensor \(name): int8 element \(i) is -128; the encoding's range is [-127, 127]")
            }
            out[i] = Float(v) * t.scale
        }
        return out
    }

    // MARK: int4

    /// `values` as signed 4-bit steps in [-7, 7] of a per-tensor scale max|x| / 7, stochastically
    /// rounded like int8 (E[decoded] = x), packed two per byte: element 2i in the low nibble of
    /// byte i, element 2i + 1 in the high nibble; an odd count leaves the last high nibble 0.
    public static func encodeInt4(_ values: ArraySlice<Float>, rng: inout SplitMix64, name: String = "update") throws -> CompressedTensor {
        var maxAbs: Float = 0
        for x in values {
            guard x.isFinite else {
                throw WireError.cannotEncode("tensor \(name): update element \(x) is not finite; the local training diverged")
            }
            maxAbs = max(maxAbs, abs(x))
        }
        var data = [UInt8](repeating: 0, count: (values.count + 1) / 2)
        guard maxAbs > 0 else { return CompressedTensor(count: values.count, scale: 0, data: data) }
        let scale = maxAbs / 7
        var j = 0
        for x in values {
            let q = x / scale
            let lo = q.rounded(.down)
            let u = Float(rng.next() >> 40) * 0x1p-24
            let r = min(7, max(-7, lo + (u < q - lo ? 1 : 0)))
            let nibble = UInt8(bitPattern: Int8(r)) & 0x0F
            data[j >> 1] |= j & 1 == 0 ? nibble : nibble << 4
            j += 1
        }
        return CompressedTensor(count: values.count, scale: scale, data: data)
    }

    /// The float32 values of an int4 tensor; `expected` is the tensor's shape product. Refuses a
    /// count that does not match, a data length other than ⌈count / 2⌉, a scale that is NaN,
    /// infinite or negative, the nibble -8 (outside the symmetric range) and a non-zero padding
    /// nibble after an odd count.
    public static func decodeInt4(_ t: CompressedTensor, expected: Int, name: String) throws -> [Float] {
        guard t.count == expected else {
            throw WireError.badParameters("tensor \(name): compressed update declares \(t.count) elements, its shape holds \(expected)")
        }
        guard t.data.count == (expected + 1) / 2 else {
            throw WireError.badParameters("tensor \(name): int4 update carries \(t.data.count) bytes for \(expected) elements (needs \((expected + 1) / 2))")
        }
        guard t.scale.isFinite, t.scale >= 0 else {
            throw WireError.badParameters("tensor \(name): int4 scale \(t.scale) is not a finite non-negative number")
        }
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

    // MARK: topk

    /// How many of `count` coordinates top-k keeps: ⌈fraction × count⌉, at least 1, at most count.
    public static func topkCount(_ count: Int, fraction: Double) -> Int {
        guard count > 0 else { return 0 }
        return min(count, max(1, Int((fraction * Double(count)).rounded(.up))))
    }

    /// The `k` coordinates of `values` largest in |value| (ties: lower index first), encoded as
    /// k (u32), the k indices in increasing order (u32 each), then their k values (float32),
    /// little-endian; and those indices. Throws on a NaN or infinite element.
    public static func encodeTopK(_ values: [Float], keep k: Int, name: String = "update") throws -> (tensor: CompressedTensor, kept: [Int]) {
        for x in values where !x.isFinite {
            throw WireError.cannotEncode("tensor \(name): update element \(x) is not finite; the local training diverged")
        }
        let k = min(max(0, k), values.count)
        var kept: [Int] = []
        kept.reserveCapacity(k)
        if k > 0 {
            var magnitudes = values.map { abs($0) }
            magnitudes.sort(by: >)
            let threshold = magnitudes[k - 1]
            var ties = k - magnitudes[0 ..< k].reduce(0) { $0 + ($1 > threshold ? 1 : 0) }
            for (i, x) in values.enumerated() {
                let m = abs(x)
                if m > threshold {
                    kept.append(i)
                } else if m == threshold && ties > 0 {
                    kept.append(i)
                    ties -= 1
                }
            }
        }
        var data = [UInt8]()
        data.reserveCapacity(4 + 8 * k)
        func u32(_ v: UInt32) { data.append(contentsOf: [UInt8(truncatingIfNeeded: v), UInt8(truncatingIfNeeded: v >> 8),
                                                          UInt8(truncatingIfNeeded: v >> 16), UInt8(truncatingIfNeeded: v >> 24)]) }
        u32(UInt32(k))
        for i in kept { u32(UInt32(i)) }
        for i in kept { u32(values[i].bitPattern) }
        return (CompressedTensor(count: values.count, scale: 0, data: data), kept)
    }

    /// The dense float32 values of a top-k tensor (zero where nothing was sent); `expected` is the
    /// tensor's shape product and `maxKept` the most coordinates the announced fraction allows.
    /// Refuses a count that does not match, a scale other than 0, a data length other than
    /// 4 + 8k for the k it declares (a k larger than it carries), k above `maxKept`, an index
    /// out of range or not above the previous one (duplicates, unsorted), and non-finite values.
    public static func decodeTopK(_ t: CompressedTensor, expected: Int, maxKept: Int, name: String) throws -> [Float] {
        guard t.count == expected else {
            throw WireError.badParameters("tensor \(name): compressed update declares \(t.count) elements, its shape holds \(expected)")
        }
        guard t.scale == 0 else {
            throw WireError.badParameters("tensor \(name): top-k update declares scale \(t.scale); top-k carries no scale (0)")
        }
        func u32(_ at: Int) -> UInt32 {
            UInt32(t.data[at]) | UInt32(t.data[at + 1]) << 8 | UInt32(t.data[at + 2]) << 16 | UInt32(t.data[at + 3]) << 24
        }
        guard t.data.count >= 4 else {
            throw WireError.badParameters("tensor \(name): top-k update carries \(t.data.count) bytes, not even its 4-byte count of kept values")
        }
        let k = Int(u32(0))
        guard k <= maxKept else {
            throw WireError.badParameters("tensor \(name): top-k update keeps \(k) of \(expected) elements; the announced fraction allows at most \(maxKept)")
        }
        guard t.data.count == 4 + 8 * k else {
            throw WireError.badParameters("tensor \(name): top-k update declares \(k) kept values but carries \(t.data.count) bytes (needs \(4 + 8 * k))")
        }
        var out = [Float](repeating: 0, count: expected)
        var previous = -1
        for j in 0 ..< k {
            let i = Int(u32(4 + 4 * j))
            guard i < expected else {
                throw WireError.badParameters("tensor \(name): top-k index \(i) (entry \(j)) is out of range for \(expected) elements")
            }
            guard i > previous else {
                throw WireError.badParameters("tensor \(name): top-k index \(i) (entry \(j)) does not follow \(previous); indices must be strictly increasing (sorted, no duplicates)")
            }
            let v = Float(bitPattern: u32(4 + 4 * k + 4 * j))
            guard v.isFinite else {
                throw WireError.badParameters("tensor \(name): top-k value \(j) is not finite")
            }
            out[i] = v
            previous = i
        }
        return out
    }

    // MARK: whole updates

    /// The update `local − global`, one compressed tensor per tensor of the layout. int8 and int4 draw
    /// their rounding from `seed` (the client's seed, derived per round by the caller). Top-k
    /// without a residual to carry: as `compress(…, residual:)` starting from none.
    public static func compress(local: Parameters, global: Parameters, as mode: UpdateCompression,
                                seed: UInt64) throws -> [CompressedTensor] {
        var residual: [Float] = []
        return try compress(local: local, global: global, as: mode, seed: seed, residual: &residual)
    }

    /// As `compress(local:global:as:seed:)`; under top-k with error feedback the update sent is
    /// the top-k of `local − global + residual`, and `residual` becomes what was not sent (it
    /// starts from zeros when its size is not the model's). Other encodings leave it alone.
    public static func compress(local: Parameters, global: Parameters, as mode: UpdateCompression,
                                seed: UInt64, residual: inout [Float]) throws -> [CompressedTensor] {
        guard mode != .none else {
            throw WireError.cannotEncode("update compression is none: send the weights as float32")
        }
        if let why = local.layoutMismatch(against: global) {
            throw WireError.badParameters("local weights \(why); cannot form the update")
        }
        var rng = SplitMix64(seed: seed)
        if case .topk(_, true) = mode, residual.count != local.count {
            residual = [Float](repeating: 0, count: local.count)
        }
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
            case .topk(let fraction, let errorFeedback):
                var acc = delta
                if errorFeedback {
                    for i in 0 ..< spec.count { acc[i] += residual[spec.offset + i] }
                }
                let (tensor, kept) = try encodeTopK(acc, keep: topkCount(spec.count, fraction: fraction), name: spec.name)
                out.append(tensor)
                if errorFeedback {
                    // What was sent leaves the residual; everything else waits for the next round.
                    for i in 0 ..< spec.count { residual[spec.offset + i] = acc[i] }
                    for i in kept { residual[spec.offset + i] = 0 }
                }
            case .none:
                break
            }
        }
        return out
    }

    /// `global` plus the decoded update: the weights the client trained, as the strategy sees
    /// them. Every tensor is checked against `global`'s layout before it is decoded; under top-k,
    /// `mode` is the receiver's (its fraction bounds how many coordinates a tensor may carry).
    public static func decompress(_ tensors: [CompressedTensor], as mode: UpdateCompression,
                                  onto global: Parameters) throws -> Parameters {
        guard mode != .none else {
            throw WireError.badParameters("a compressed update arrived although update compression is none")
        }
        guard tensors.count == global.layout.count else {
            throw WireError.badParameters("compressed update has \(tensors.count) tensors, the model \(global.layout.count)")
        }
        var result = global
        for (spec, t) in zip(global.layout, tensors) {
            let delta: [Float]
            switch mode {
            case .fp16: delta = try decodeFP16(t, expected: spec.count, name: spec.name)
            case .int8: delta = try decodeInt8(t, expected: spec.count, name: spec.name)
            case .int4: delta = try decodeInt4(t, expected: spec.count, name: spec.name)
            case .topk(let fraction, _):
                delta = try decodeTopK(t, expected: spec.count, maxKept: topkCount(spec.count, fraction: fraction), name: spec.name)
            case .none: throw WireError.badParameters("a compressed update arrived although update compression is none")
            }
            for i in 0 ..< spec.count { result.values[spec.offset + i] += delta[i] }
        }
        return result
    }
}
