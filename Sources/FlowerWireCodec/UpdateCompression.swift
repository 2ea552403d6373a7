// UpdateCompression: lossy encodings of a client's model update (local weights minus the weights
// it was sent), per tensor. fp16 is IEEE binary16 with round-to-nearest-even; int8 is a per-tensor
// scale (max |x| / 127) and stochastic rounding, so the decoded update is unbiased; int4 is the
// same with a per-tensor scale max |x| / 7 and two values per byte. Decoding checks
// every peer-supplied count and scale before it allocates or multiplies.
import FlowerBase
import FlowerCore

/// How a client encodes its update (`--update-compression`).
public enum UpdateCompression: String, Sendable, Equatable, CaseIterable, CustomStringConvertible {
    /// float32, as the weights themselves.
    case none
    /// IEEE binary16 per element (2 bytes), round-to-nearest-even.
    case fp16
    /// One signed byte per element in [-127, 127] times a per-tensor float32 scale, stochastically rounded.
    case int8
    /// Two signed nibbles per byte in [-7, 7] times a per-tensor float32 scale, stochastically rounded.
    case int4

    public var description: String { rawValue }

    /// Bytes on the wire for a tensor of `count` elements (int4 packs two per byte).
    public func bytes(count: Int) -> Int {
        switch self {
        case .none: return 4 * count
        case .fp16: return 2 * count
        case .int8: return count
        case .int4: return (count + 1) / 2
        }
    }
}

/// One tensor of a compressed update: `count` elements encoded in `data`, with `scale` for int8
/// (0 for fp16).
public struct CompressedTensor: Sendable, Equatable {
    /// Number of elements the sender declares; must equal the tensor's shape product.
    public var count: Int
    /// int8/int4: the value of one quantisation step (max |x| / 127, max |x| / 7); fp16: 0.
    public var scale: Float
    /// fp16: 2 bytes per element, little-endian; int8: one two's-complement byte per element;
    /// int4: element 2i in the low nibble of byte i, 2i + 1 in its high nibble (two's complement).
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

    // MARK: whole updates

    /// The update `local − global`, one compressed tensor per tensor of the layout. int8 and int4 draw
    /// their rounding from `seed` (the client's seed, derived per round by the caller).
    public static func compress(local: Parameters, global: Parameters, as mode: UpdateCompression,
                                seed: UInt64) throws -> [CompressedTensor] {
        guard mode != .none else {
            throw WireError.cannotEncode("update compression is none: send the weights as float32")
        }
        if let why = local.layoutMismatch(against: global) {
            throw WireError.badParameters("local weights \(why); cannot form the update")
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
            case .none:
                break
            }
        }
        return out
    }

    /// `global` plus the decoded update: the weights the client trained, as the strategy sees
    /// them. Every tensor is checked against `global`'s layout before it is decoded.
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
            case .none: throw WireError.badParameters("a compressed update arrived although update compression is none")
            }
            for i in 0 ..< spec.count { result.values[spec.offset + i] += delta[i] }
        }
        return result
    }
}
