// UpdateCodec's top-k encoding: the largest fraction of an update's coordinates (per tensor or
// over the whole update, with warm-up rounds), as u32 indices or LEB128 index gaps and float32
// values, or LEB128 index gaps and int8 steps of a per-tensor scale (stochastically rounded).
// Decoding checks every peer-supplied count, index, gap and scale before it allocates or indexes.
import FlowerBase
import FlowerCore

extension UpdateCodec {
    // MARK: topk

    /// How many of `count` coordinates top-k keeps: ⌈fraction × count⌉, at least 1, at most count.
    public static func topkCount(_ count: Int, fraction: Double) -> Int {
        guard count > 0 else { return 0 }
        return min(count, max(1, Int((fraction * Double(count)).rounded(.up))))
    }

    /// Under a top-k `mode` in `round`, the most coordinates a tensor of `count` elements may
    /// carry: ⌈F_round × count⌉ per tensor, or all of them under global selection (whose bound
    /// is on the whole update: `topkBudget`).
    public static func topkMaxKept(_ count: Int, mode: UpdateCompression, round: Int) -> Int {
        guard case .topk(_, _, let global, _, _, _) = mode else { return count }
        return global ? count : topkCount(count, fraction: mode.topkFraction(round: round))
    }

    /// Under a top-k `mode` in `round`, the most coordinates the whole update may carry: the sum
    /// over the tensors of ⌈F_round × count⌉ (per-tensor and global selection send the same total).
    public static func topkBudget(_ layout: [TensorSpec], mode: UpdateCompression, round: Int) -> Int {
        let f = mode.topkFraction(round: round)
        return layout.reduce(0) { $0 + topkCount($1.count, fraction: f) }
    }

    /// The indices of the `k` entries of `values` largest in |value|, in increasing order (ties:
    /// lower index first). Throws on a NaN or infinite element.
    public static func topkIndices(_ values: [Float], keep k: Int, name: String = "update") throws -> [Int] {
        for x in values where !x.isFinite {
            throw WireError.cannotEncode("tensor \(name): update element \(x) is not finite; the local training diverged")
        }
        let k = min(max(0, k), values.count)
        var kept: [Int] = []
        kept.reserveCapacity(k)
        guard k > 0 else { return kept }
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
        return kept
    }

    /// The `k` coordinates of `values` largest in |value| (ties: lower index first), encoded as
    /// k (u32), the k indices in increasing order (u32 each, or LEB128 gaps with `varint`), then
    /// their k values (float32), little-endian; and those indices. Throws on a NaN or infinite element.
    public static func encodeTopK(_ values: [Float], keep k: Int, varint: Bool = false, name: String = "update") throws -> (tensor: CompressedTensor, kept: [Int]) {
        let kept = try topkIndices(values, keep: k, name: name)
        return (encodeTopK(values, kept: kept, varint: varint), kept)
    }

    /// The coordinates `kept` (strictly increasing, in range) of `values` in top-k form.
    public static func encodeTopK(_ values: [Float], kept: [Int], varint: Bool = false) -> CompressedTensor {
        let k = kept.count
        var data = [UInt8]()
        data.reserveCapacity(4 + (varint ? 5 : 8) * k)
        appendU32(UInt32(k), to: &data)
        if varint {
            appendVarintGaps(kept, to: &data)
        } else {
            for i in kept { appendU32(UInt32(i), to: &data) }
        }
        for i in kept { appendU32(values[i].bitPattern, to: &data) }
        return CompressedTensor(count: values.count, scale: 0, data: data)
    }

    /// The dense float32 values of a top-k tensor (zero where nothing was sent); `expected` is the
    /// tensor's shape product and `maxKept` the most coordinates the announced fraction allows.
    /// Refuses a count that does not match, a scale other than 0, a data length other than
    /// 4 + 8k for the k it declares (a k larger than it carries), k above `maxKept`, an index
    /// out of range or not above the previous one (duplicates, unsorted), and non-finite values.
    /// With `varint` the indices are LEB128 gaps: the length must be 4 + (the varints' bytes) +
    /// 4k exactly, a varint longer than 5 bytes, above u32, or not in its shortest form is refused,
    /// as is an index out of range.
    public static func decodeTopK(_ t: CompressedTensor, expected: Int, maxKept: Int, varint: Bool = false, name: String) throws -> [Float] {
        try decodeTopKCounted(t, expected: expected, maxKept: maxKept, varint: varint, name: name).values
    }

    /// As `decodeTopK`, with the number of coordinates the tensor carried.
    public static func decodeTopKCounted(_ t: CompressedTensor, expected: Int, maxKept: Int, varint: Bool = false,
                                         name: String) throws -> (values: [Float], kept: Int) {
        guard t.count == expected else {
            throw WireError.badParameters("tensor \(name): compressed update declares \(t.count) elements, its shape holds \(expected)")
        }
        guard t.scale == 0 else {
            throw WireError.badParameters("tensor \(name): top-k update declares scale \(t.scale); top-k carries no scale (0)")
        }
        func u32(_ at: Int) -> UInt32 { readU32(t.data, at: at) }
        let k = try declaredKept(t, expected: expected, maxKept: maxKept, name: name)
        var indices = [Int]()
        let valuesAt: Int
        if varint {
            (indices, valuesAt) = try readVarintIndices(t, k: k, expected: expected, valueBytes: 4, name: name)
        } else {
            guard t.data.count == 4 + 8 * k else {
                throw WireError.badParameters("tensor \(name): top-k update declares \(k) kept values but carries \(t.data.count) bytes (needs \(4 + 8 * k))")
            }
            indices.reserveCapacity(k)
            var previous = -1
            for j in 0 ..< k {
                let i = Int(u32(4 + 4 * j))
                guard i < expected else {
                    throw WireError.badParameters("tensor \(name): top-k index \(i) (entry \(j)) is out of range for \(expected) elements")
                }
                guard i > previous else {
                    throw WireError.badParameters("tensor \(name): top-k index \(i) (entry \(j)) does not follow \(previous); indices must be strictly increasing (sorted, no duplicates)")
                }
                indices.append(i)
                previous = i
            }
            valuesAt = 4 + 4 * k
        }
        var out = [Float](repeating: 0, count: expected)
        for (j, i) in indices.enumerated() {
            let v = Float(bitPattern: u32(valuesAt + 4 * j))
            guard v.isFinite else {
                throw WireError.badParameters("tensor \(name): top-k value \(j) is not finite")
            }
            out[i] = v
        }
        return (out, k)
    }

    /// `v` little-endian.
    static func appendU32(_ v: UInt32, to data: inout [UInt8]) {
        data.append(contentsOf: [UInt8(truncatingIfNeeded: v), UInt8(truncatingIfNeeded: v >> 8),
                                 UInt8(truncatingIfNeeded: v >> 16), UInt8(truncatingIfNeeded: v >> 24)])
    }

    /// The little-endian u32 at `at` (the caller has checked `at + 4 <= data.count`).
    @inline(__always)
    static func readU32(_ data: [UInt8], at: Int) -> UInt32 {
        UInt32(data[at]) | UInt32(data[at + 1]) << 8 | UInt32(data[at + 2]) << 16 | UInt32(data[at + 3]) << 24
    }

    /// The count of kept values every top-k tensor starts with (u32 at byte 0), refused when the
    /// data cannot hold it or it is above `maxKept`, the most the announced fraction allows.
    static func declaredKept(_ t: CompressedTensor, expected: Int, maxKept: Int, name: String) throws -> Int {
        guard t.data.count >= 4 else {
            throw WireError.badParameters("tensor \(name): top-k update carries \(t.data.count) bytes, not even its 4-byte count of kept values")
        }
        let k = Int(readU32(t.data, at: 0))
        guard k <= maxKept else {
            throw WireError.badParameters("tensor \(name): top-k update keeps \(k) of \(expected) elements; the announced fraction allows at most \(maxKept)")
        }
        return k
    }

    /// Appends the LEB128 gaps of `kept` (strictly increasing): the first index, then each index
    /// minus the previous one minus 1, 7 bits a byte, low group first, high bit = more follows.
    static func appendVarintGaps(_ kept: [Int], to data: inout [UInt8]) {
        var previous = -1
        for i in kept {
            var gap = UInt32(i - previous - 1)
            previous = i
            while gap >= 0x80 {
                data.append(UInt8(truncatingIfNeeded: gap) | 0x80)
                gap >>= 7
            }
            data.append(UInt8(gap))
        }
    }

    /// The `k` indices of a varint top-k tensor (its gaps start at byte 4) and the byte where its
    /// values start, `valueBytes` bytes each. Checks, before it allocates, that the data holds at
    /// least one byte per index and `valueBytes` per value; refuses a varint that runs into the
    /// values, is longer than 5 bytes, above u32 or not in its shortest form, an index out of
    /// range, and a length other than the indices' end plus `valueBytes` × k.
    static func readVarintIndices(_ t: CompressedTensor, k: Int, expected: Int, valueBytes: Int, name: String) throws -> (indices: [Int], valuesAt: Int) {
        let least = 4 + (1 + valueBytes) * k
        guard t.data.count >= least else {
            throw WireError.badParameters("tensor \(name): top-k update declares \(k) kept values but carries \(t.data.count) bytes (needs at least \(least))")
        }
        var indices = [Int]()
        indices.reserveCapacity(k)
        let indicesEnd = t.data.count - valueBytes * k
        var at = 4
        var previous = -1
        for j in 0 ..< k {
            var gap: UInt64 = 0
            var shift: UInt64 = 0
            while true {
                guard at < indicesEnd else {
                    throw WireError.badParameters("tensor \(name): top-k index \(j) runs into the values; the update declares \(k) kept values but carries \(t.data.count) bytes")
                }
                let byte = t.data[at]
                at += 1
                guard shift < 35 else {
                    throw WireError.badParameters("tensor \(name): top-k index gap \(j) is longer than 5 bytes")
                }
                gap |= UInt64(byte & 0x7F) << shift
                shift += 7
                if byte & 0x80 == 0 {
                    guard byte != 0 || shift == 7 else {
                        throw WireError.badParameters("tensor \(name): top-k index gap \(j) is not in its shortest form (a trailing zero byte)")
                    }
                    break
                }
            }
            guard gap <= UInt64(UInt32.max) else {
                throw WireError.badParameters("tensor \(name): top-k index gap \(j) (\(gap)) does not fit u32")
            }
            let i = previous + 1 + Int(gap)
            guard i < expected else {
                throw WireError.badParameters("tensor \(name): top-k index \(i) (entry \(j)) is out of range for \(expected) elements")
            }
            indices.append(i)
            previous = i
        }
        guard t.data.count == at + valueBytes * k else {
            throw WireError.badParameters("tensor \(name): top-k update declares \(k) kept values but carries \(t.data.count) bytes (its indices end at byte \(at), so it needs \(at + valueBytes * k))")
        }
        return (indices, at)
    }

    // MARK: topk-int8

    /// The coordinates `kept` (strictly increasing, in range) of `values` as topk-int8: k (u32),
    /// k LEB128 index gaps, then k int8 steps in [-127, 127] of the scale (the largest kept
    /// |value|) / 127, stochastically rounded from `rng` (E[step × scale] = value); and the values
    /// the receiver will decode, in the order of `kept`. No kept coordinate (or all zero): scale 0.
    /// Throws on a NaN or infinite kept value.
    public static func encodeTopKInt8(_ values: [Float], kept: [Int], rng: inout SplitMix64,
                                      name: String = "update") throws -> (tensor: CompressedTensor, decoded: [Float]) {
        let k = kept.count
        var steps = [UInt8](repeating: 0, count: k)
        let scale = try stochasticSteps(kept.map { values[$0] }[...], levels: 127, rng: &rng, name: name) { j, r in
            steps[j] = UInt8(bitPattern: r)
        }
        var data = [UInt8]()
        data.reserveCapacity(4 + 2 * k)
        appendU32(UInt32(k), to: &data)
        appendVarintGaps(kept, to: &data)
        data.append(contentsOf: steps)
        return (CompressedTensor(count: values.count, scale: scale, data: data), steps.map { Float(Int8(bitPattern: $0)) * scale })
    }

    /// The dense float32 values of a topk-int8 tensor (zero where nothing was sent) and how many
    /// coordinates it carried; `expected` is the tensor's shape product and `maxKept` the most
    /// coordinates the announced fraction allows. Refuses a count that does not match, a scale
    /// that is NaN, infinite or negative, k above `maxKept`, fewer than 4 + 2k bytes (a k larger
    /// than it carries), every malformed or out-of-range index gap (as topk-varint), a length
    /// other than the indices' end plus k, and the step -128 (outside the symmetric range).
    public static func decodeTopKInt8Counted(_ t: CompressedTensor, expected: Int, maxKept: Int,
                                             name: String) throws -> (values: [Float], kept: Int) {
        try checkQuantized(t, expected: expected, bytes: nil, kind: "top-k int8", name: name)
        let k = try declaredKept(t, expected: expected, maxKept: maxKept, name: name)
        let (indices, valuesAt) = try readVarintIndices(t, k: k, expected: expected, valueBytes: 1, name: name)
        var out = [Float](repeating: 0, count: expected)
        for (j, i) in indices.enumerated() {
            out[i] = try int8Value(t.data[valuesAt + j], scale: t.scale, what: "tensor \(name): top-k int8 value \(j)")
        }
        return (out, k)
    }
}
