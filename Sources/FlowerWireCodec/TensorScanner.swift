// A small protobuf wire-format scanner that keeps tensor bytes out of libprotobuf-c.
//
// libprotobuf-c `unpack` copies every `bytes` field, so decoding a FitIns through it alone copies
// each tensor twice (payload → C block → `Parameters` buffer). Instead, before unpacking, this
// scanner walks the payload along the only paths where a `Tensor` can be (proto/flower.proto):
//
//   ServerMessage.fit_ins (5) | .evaluate_ins (6)  → .parameters (2) → .tensors (1) → .data (4)
//   ClientMessage.parameters_res (2) → .parameters (2) | .fit_res (3) → .parameters (3) → ...
//
// and rewrites every non-empty `Tensor.data` as a 4-byte *token* (the little-endian index of the
// data's byte range in the received payload), fixing up the lengths of the enclosing messages.
// libprotobuf-c then parses the small rewritten payload with its usual semantics, so which data
// survives is its decision, not a second implementation of it: unknown fields are kept aside, a
// repeated `data` takes the last value, an embedded message sent twice is merged (repeated
// `tensors` concatenate), and a oneof member sent twice is *replaced* by the later one
// (libprotobuf-c 1.4 does not merge oneof members). The decoder maps each unpacked tensor's token
// back to its range and copies the floats once, straight from the received frame into the flat
// buffer; data that did not survive is never copied (TensorScannerTests pins all of this).
//
// Every other field is copied verbatim and validated by libprotobuf-c. The scanner is as strict
// as libprotobuf-c on what it walks (tags of at most 5 bytes, lengths of at most 5 bytes and
// ≤ Int32.max, varints of at most 10 bytes, no groups, no nested length past its parent) and
// stricter in two ways: field number 0 and a non-length-delimited message/bytes field on a tensor
// path are errors with their position. A payload that carries no Parameters is not copied at all.

/// The byte range of one tensor's data in the received payload.
struct TensorBytes: Equatable {
    var offset: UInt32
    var count: UInt32
}

/// A payload prepared for libprotobuf-c: tensor data replaced by tokens into `ranges`.
struct ScannedPayload {
    /// The rewritten payload to unpack, or nil when the original carries no Parameters and can be
    /// unpacked as is.
    var rewritten: [UInt8]?
    /// Where each token's tensor data lies in the original payload (index = token).
    var ranges: [TensorBytes]
}

/// Scans FlowerWire envelopes for tensor data (see the file header).
package enum TensorScanner {
    /// Size of a token in a rewritten `Tensor.data`: a little-endian UInt32 index into `ranges`.
    static let tokenSize = 4

    /// Most tensors one message may carry. Our model has 10 and large networks a few thousand;
    /// the cap stops a frame of many tiny tensors from costing libprotobuf-c ~100 bytes of
    /// allocations per few payload bytes.
    static let maxTensors = WireLimits.maxTensors

    /// Which envelope a payload is, hence which of its fields lead to `Parameters`.
    enum Envelope {
        case server, client
    }

    /// Message types on the way to tensor data; each knows which of its fields lead further.
    package enum Level: Equatable {
        case serverMessage, clientMessage
        case instruction(name: String, parametersField: Int)
        case parameters, tensor
        /// Any other message type (PayloadLimits walks them all; none leads to tensor data).
        case named(String)

        package var name: String {
            switch self {
            case .serverMessage: return "ServerMessage"
            case .clientMessage: return "ClientMessage"
            case .instruction(let name, _): return name
            case .parameters: return "Parameters"
            case .tensor: return "Tensor"
            case .named(let name): return name
            }
        }

        /// The level reached through field `number`, or nil if the field is copied verbatim.
        /// `Tensor.data` is the leaf: it returns `.tensor` itself (see `rewrite`).
        func child(_ number: Int) -> Level? {
            switch (self, number) {
            case (.serverMessage, 5): return .instruction(name: "FitIns", parametersField: 2)
            case (.serverMessage, 6): return .instruction(name: "EvaluateIns", parametersField: 2)
            case (.clientMessage, 2): return .instruction(name: "ParametersRes", parametersField: 2)
            case (.clientMessage, 3): return .instruction(name: "FitRes", parametersField: 3)
            case (.instruction(_, let p), let n) where n == p: return .parameters
            case (.parameters, 1): return .tensor
            case (.tensor, 4): return .tensor
            default: return nil
            }
        }
    }

    /// Scans `payload` as the given envelope; throws `malformedMessage` naming the position of
    /// the first structural error on a tensor path.
    static func scan(_ payload: UnsafeRawBufferPointer, envelope: Envelope) throws -> ScannedPayload {
        guard payload.count <= Int(UInt32.max) else {
            throw WireError.malformedMessage("payload of \(payload.count) bytes exceeds the 4 GiB frame format")
        }
        var scanner = Scanner(bytes: payload)
        let top: Level = envelope == .server ? .serverMessage : .clientMessage
        // Most messages carry no parameters: walk the envelope once and hand back the original.
        var carriesParameters = false
        var pos = 0
        while pos < payload.count {
            let f = try scanner.field(at: pos, end: payload.count, in: top)
            if top.child(f.number) != nil { carriesParameters = true; break }
            pos = f.end
        }
        guard carriesParameters else { return ScannedPayload(rewritten: nil, ranges: []) }
        var out: [UInt8] = []
        try scanner.rewrite(top, from: 0, to: payload.count, into: &out)
        return ScannedPayload(rewritten: out, ranges: scanner.ranges)
    }

    /// One field's position: `start` (tag) ..< `tagEnd` ..< `valueStart` (after any length prefix) ..< `end`.
    package struct Field {
        package var number: Int
        package var wireType: UInt8
        package var start: Int
        package var tagEnd: Int
        package var valueStart: Int
        package var end: Int
    }

    /// The one protobuf field reader of the package: this scanner, `PayloadLimits`' schema walk
    /// and FlowerCompat's field count over Flower's messages (`ProtoScan`) all read fields here.
    package struct Scanner {
        package let bytes: UnsafeRawBufferPointer
        var ranges: [TensorBytes] = []
        var tensors = 0

        package init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

        /// A varint of at most `maxBytes` bytes at `pos`, not reaching `end`: (value, bytes used).
        func varint(at pos: Int, end: Int, maxBytes: Int, what: String, in level: Level) throws -> (UInt64, Int) {
            var value: UInt64 = 0
            var i = 0
            while i < maxBytes {
                guard pos + i < end else {
                    throw WireError.malformedMessage("\(level.name): truncated \(what) at byte \(pos) (message ends at byte \(end))")
                }
                let byte = bytes[pos + i]
                if i < 10 { value |= UInt64(byte & 0x7f) << (7 * UInt64(i)) }
                i += 1
                if byte & 0x80 == 0 { return (value, i) }
            }
            throw WireError.malformedMessage("\(level.name): \(what) at byte \(pos) runs past \(maxBytes) bytes")
        }

        /// The field starting at `pos`, which must end by `end` (its enclosing message's end).
        package func field(at pos: Int, end: Int, in level: Level) throws -> Field {
            let (tag, tagBytes) = try varint(at: pos, end: end, maxBytes: 5, what: "field tag", in: level)
            guard tag <= UInt64(UInt32.max) else {
                throw WireError.malformedMessage("\(level.name): field tag \(tag) at byte \(pos) exceeds 32 bits")
            }
            let number = Int(tag >> 3), wireType = UInt8(tag & 7)
            guard number > 0 else {
                throw WireError.malformedMessage("\(level.name): field number 0 at byte \(pos) is not valid protobuf")
            }
            let valueStart = pos + tagBytes
            let remaining = end - valueStart
            switch wireType {
            case 0:
                let (_, n) = try varint(at: valueStart, end: end, maxBytes: 10, what: "varint of field \(number)", in: level)
                return Field(number: number, wireType: 0, start: pos, tagEnd: valueStart, valueStart: valueStart, end: valueStart + n)
            case 1, 5:
                let size = wireType == 1 ? 8 : 4
                guard size <= remaining else {
                    throw WireError.malformedMessage("\(level.name): field \(number) at byte \(pos) needs \(size) bytes, \(remaining) left in its message")
                }
                return Field(number: number, wireType: wireType, start: pos, tagEnd: valueStart, valueStart: valueStart, end: valueStart + size)
            case 2:
                let (length, n) = try varint(at: valueStart, end: end, maxBytes: 5, what: "length of field \(number)", in: level)
                guard length <= UInt64(Int32.max), Int(length) <= remaining - n else {
                    throw WireError.malformedMessage("\(level.name): field \(number) at byte \(pos) declares \(length) bytes, but its message has \(remaining - n) left")
                }
                return Field(number: number, wireType: 2, start: pos, tagEnd: valueStart, valueStart: valueStart + n, end: valueStart + n + Int(length))
            default:
                throw WireError.malformedMessage("\(level.name): field \(number) at byte \(pos) has wire type \(wireType) (groups and types 6-7 are not supported)")
            }
        }

        /// Appends message `level` (bytes `start ..< end`) to `out`, tensor data replaced by tokens.
        mutating func rewrite(_ level: Level, from start: Int, to end: Int, into out: inout [UInt8]) throws {
            var pos = start
            while pos < end {
                let f = try field(at: pos, end: end, in: level)
                defer { pos = f.end }
                guard let child = level.child(f.number) else {
                    append(f.start ..< f.end, to: &out)
                    continue
                }
                let fieldName = level == .tensor ? "Tensor.data" : "\(level.name) field \(f.number) (\(child.name))"
                guard f.wireType == 2 else {
                    throw WireError.malformedMessage("\(fieldName) at byte \(f.start) has wire type \(f.wireType); it must be length-delimited (2)")
                }
                if level == .parameters {
                    tensors += 1
                    guard tensors <= TensorScanner.maxTensors else {
                        throw WireError.malformedMessage("Parameters at byte \(f.start): more than \(TensorScanner.maxTensors) tensors in one message; send the model as fewer, larger tensors")
                    }
                }
                append(f.start ..< f.tagEnd, to: &out)  // the tag as sent
                if level == .tensor {
                    let count = f.end - f.valueStart
                    guard count > 0 else {  // an empty `data` stays empty (and still overrides an earlier one)
                        appendVarint(0, to: &out)
                        continue
                    }
                    let token = UInt32(ranges.count)  // < payload size / 3, so it fits
                    ranges.append(TensorBytes(offset: UInt32(f.valueStart), count: UInt32(count)))
                    appendVarint(UInt64(TensorScanner.tokenSize), to: &out)
                    withUnsafeBytes(of: token.littleEndian) { out.append(contentsOf: $0) }
                } else {
                    var inner: [UInt8] = []
                    try rewrite(child, from: f.valueStart, to: f.end, into: &inner)
                    appendVarint(UInt64(inner.count), to: &out)
                    out.append(contentsOf: inner)
                }
            }
        }

        private func append(_ range: Range<Int>, to out: inout [UInt8]) {
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[range]))
        }

        private func appendVarint(_ value: UInt64, to out: inout [UInt8]) {
            var v = value
            while v >= 0x80 { out.append(UInt8(truncatingIfNeeded: v) | 0x80); v >>= 7 }
            out.append(UInt8(v))
        }
    }
}
