// The schema walk that runs before libprotobuf-c sees a payload: every field of every message
// type in proto/flower.proto, checked against `WireLimits` on the raw bytes.
//
// libprotobuf-c allocates per field occurrence (a ScannedMember, the element, its pointer), so a
// frame of 2-byte empty map entries or a packed `shape` of ten million 1-byte varints made it
// allocate 30-70× the frame. This walk counts map entries, tensors, shape dimensions and
// compressions, measures every string (UTF-8, no NUL, length, printable identifiers) and checks
// the wire type of every known field, so those messages are refused with the field's name and
// position before anything is allocated for them. Unknown fields are skipped (proto3); what they
// could still cost libprotobuf-c is estimated too: the walk adds up a lower bound of what
// libprotobuf-c 1.4 will allocate (each message's C struct, every string copy, repeated-field
// arrays, ScannedMember slabs past 16 fields, unknown-field records and copies, 16 bytes of
// malloc overhead per block) and refuses the message before unpacking when that exceeds
// `WireLimits.decodeBudget(payloadBytes:)`; the same budget is enforced exactly by the allocator
// handed to libprotobuf-c (ProtoDecode.swift), so an estimate that is too low still cannot let a
// message allocate more. The schema has a fixed depth (≤ 6 levels) and unknown fields are never
// descended, so the walk's recursion is bounded.
import CFlowerProto

/// Validates a FlowerWire payload against `WireLimits` without allocating per field.
enum PayloadLimits {
    /// What a field must hold. Plain values only (nested message types are indices into
    /// `schemas`): the schema tables are globals, and LeakSanitizer cannot see references held in
    /// the spare bits of enum payloads, so boxed (indirect) cases there were reported as leaks.
    enum Rule: Sendable {
        /// A varint (uint32/uint64/int64/sint64/bool/enum); ranges are checked after unpacking.
        case varint
        /// A 64-bit fixed value (double).
        case fixed64
        /// UTF-8 text without NUL of at most `max` bytes; `printable` also forbids control and
        /// format characters (identifiers).
        case string(max: Int, printable: Bool)
        /// Bytes of at most `max` (nil: bounded by the frame only; they cost 1× to copy).
        case bytes(max: Int?)
        /// `Tensor.data`: any length; libprotobuf-c only sees TensorScanner's 4-byte token.
        case tensorData
        /// An embedded message (index into `schemas`).
        case message(Int)
        /// One element of a repeated message field (index into `schemas`), counted against a cap.
        case counted(Int, Counter)
        /// A repeated varint field, packed or not, counted per enclosing message.
        case repeatedVarint(Counter)
    }

    /// Counted things and their caps.
    enum Counter: Sendable {
        case mapEntries, tensors, shapeDims, compressions, secAggEntries

        var limit: Int {
            switch self {
            case .secAggEntries: return WireLimits.maxSecAggEntries
            case .mapEntries: return WireLimits.maxMapEntries
            case .tensors: return WireLimits.maxTensors
            case .shapeDims: return WireLimits.maxShapeDims
            case .compressions: return WireLimits.maxCompressions
            }
        }

        /// Bytes per element in libprotobuf-c's array (int64 shape, enum compression).
        var elementSize: Int { self == .compressions ? 4 : 8 }

        var advice: String {
            switch self {
            case .mapEntries: return "config/metrics map entries in one message; send fewer metrics"
            case .tensors: return "tensors in one message; send the model as fewer, larger tensors"
            case .shapeDims: return "dimensions in one tensor's shape"
            case .compressions: return "entries in accept_compression"
            case .secAggEntries: return "secure-aggregation keys or shares in one message (num_shares is at most 4096)"
            }
        }
    }

    /// One known field of a message type.
    struct FieldSpec: Sendable {
        let name: String
        let rule: Rule
    }

    /// A message type: its name and its known fields by number.
    struct Schema: Sendable {
        let name: String
        /// Size of the C struct libprotobuf-c allocates for one occurrence.
        let cSize: Int
        let fields: [Int: FieldSpec]
    }

    static let identifier = Rule.string(max: WireLimits.maxIdentifierBytes, printable: true)
    static let name = Rule.string(max: WireLimits.maxNameBytes, printable: true)
    static let text = Rule.string(max: WireLimits.maxTextBytes, printable: false)

    static func schema<C>(_ name: String, _ c: C.Type, _ fields: [Int: (String, Rule)]) -> Schema {
        Schema(name: name, cSize: MemoryLayout<C>.size, fields: fields.mapValues { FieldSpec(name: $0.0, rule: $0.1) })
    }

    // Indices into `schemas`.
    static let serverMessage = 0, clientMessage = 1, challenge = 2, welcome = 3, refusal = 4, getParametersIns = 5
    static let fitIns = 6, evaluateIns = 7, reconnect = 8, finish = 9, hello = 10, parametersRes = 11, fitRes = 12
    static let evaluateRes = 13, goodbye = 14, status = 15, parameters = 16, tensor = 17, mapEntry = 18, scalar = 19
    static let secAggParameters = 20, secAggSetup = 21, secAggPublicKeys = 22, secAggNeighbourKeys = 23
    static let secAggEncryptedShare = 24, secAggShareKeys = 25, secAggForwardedShares = 26, secAggMaskedInput = 27
    static let secAggUnmaskRequest = 28, secAggShare = 29, secAggUnmaskResponse = 30, compressedTensor = 31

    static let secAggKey = Rule.bytes(max: WireLimits.secAggKeyBytes)
    static let secAggIndices = Rule.bytes(max: WireLimits.maxSecAggIndexBytes)

    /// Every message type of proto/flower.proto, at the indices above.
    static let schemas: [Schema] = [
        schema("ServerMessage", Flwr__ServerMessage.self, [
            1: ("challenge", .message(challenge)), 2: ("welcome", .message(welcome)), 3: ("refusal", .message(refusal)),
            4: ("get_parameters_ins", .message(getParametersIns)), 5: ("fit_ins", .message(fitIns)),
            6: ("evaluate_ins", .message(evaluateIns)), 7: ("reconnect", .message(reconnect)), 8: ("finish", .message(finish)),
            9: ("secagg_setup", .message(secAggSetup)), 10: ("secagg_neighbour_keys", .message(secAggNeighbourKeys)),
            11: ("secagg_forwarded_shares", .message(secAggForwardedShares)), 12: ("secagg_unmask_request", .message(secAggUnmaskRequest)),
        ]),
        schema("ClientMessage", Flwr__ClientMessage.self, [
            1: ("hello", .message(hello)), 2: ("parameters_res", .message(parametersRes)), 3: ("fit_res", .message(fitRes)),
            4: ("evaluate_res", .message(evaluateRes)), 5: ("goodbye", .message(goodbye)),
            6: ("secagg_public_keys", .message(secAggPublicKeys)), 7: ("secagg_share_keys", .message(secAggShareKeys)),
            8: ("secagg_masked_input", .message(secAggMaskedInput)), 9: ("secagg_unmask_response", .message(secAggUnmaskResponse)),
        ]),
        schema("Challenge", Flwr__Challenge.self, [
            1: ("protocol_version", .varint), 2: ("nonce", .bytes(max: WireLimits.maxTokenBytes)), 3: ("auth_required", .varint),
            4: ("max_frame_bytes", .varint),
        ]),
        schema("Welcome", Flwr__Welcome.self, [1: ("protocol_version", .varint), 2: ("session_id", identifier), 3: ("compression", .varint),
                                               4: ("model", text), 5: ("update_encoding", .varint)]),
        schema("Refusal", Flwr__Refusal.self, [1: ("reason", .varint), 2: ("message", text)]),
        schema("GetParametersIns", Flwr__GetParametersIns.self, [1: ("config", .counted(mapEntry, .mapEntries))]),
        schema("FitIns", Flwr__FitIns.self, [1: ("round", .varint), 2: ("parameters", .message(parameters)), 3: ("config", .counted(mapEntry, .mapEntries))]),
        schema("EvaluateIns", Flwr__EvaluateIns.self, [1: ("round", .varint), 2: ("parameters", .message(parameters)),
                                                       3: ("config", .counted(mapEntry, .mapEntries))]),
        schema("Reconnect", Flwr__Reconnect.self, [1: ("seconds", .varint), 2: ("reason", text)]),
        schema("Finish", Flwr__Finish.self, [1: ("rounds_completed", .varint), 2: ("reason", text), 3: ("failed", .varint)]),
        schema("Hello", Flwr__Hello.self, [
            1: ("protocol_version", .varint), 2: ("client_id", identifier), 3: ("partition", .varint),
            4: ("accept_compression", .repeatedVarint(.compressions)), 5: ("auth_proof", .bytes(max: WireLimits.maxTokenBytes)),
            6: ("agent", text), 7: ("max_frame_bytes", .varint), 8: ("model", text),
        ]),
        schema("ParametersRes", Flwr__ParametersRes.self, [1: ("status", .message(status)), 2: ("parameters", .message(parameters))]),
        schema("FitRes", Flwr__FitRes.self, [
            1: ("status", .message(status)), 2: ("round", .varint), 3: ("parameters", .message(parameters)),
            4: ("num_examples", .varint), 5: ("metrics", .counted(mapEntry, .mapEntries)),
            6: ("update_encoding", .varint), 7: ("update", .counted(compressedTensor, .tensors)),
        ]),
        schema("EvaluateRes", Flwr__EvaluateRes.self, [
            1: ("status", .message(status)), 2: ("round", .varint), 3: ("loss", .fixed64),
            4: ("num_examples", .varint), 5: ("metrics", .counted(mapEntry, .mapEntries)),
        ]),
        schema("Goodbye", Flwr__Goodbye.self, [1: ("reason", text)]),
        schema("Status", Flwr__Status.self, [1: ("code", .varint), 2: ("message", text)]),
        schema("Parameters", Flwr__Parameters.self, [1: ("tensors", .counted(tensor, .tensors))]),
        schema("Tensor", Flwr__Tensor.self, [
            1: ("name", name), 2: ("shape", .repeatedVarint(.shapeDims)), 3: ("dtype", .varint), 4: ("data", .tensorData),
        ]),
        // All map entry types (config and metrics) have the same layout: key, value.
        schema("map entry", Flwr__FitIns__ConfigEntry.self, [1: ("key", name), 2: ("value", .message(scalar))]),
        schema("Scalar", Flwr__Scalar.self, [
            1: ("double_value", .fixed64), 2: ("int64_value", .varint), 3: ("bool_value", .varint),
            4: ("string_value", .string(max: WireLimits.maxStringValueBytes, printable: false)), 5: ("bytes_value", .bytes(max: nil)),
        ]),
        schema("SecAggParameters", Flwr__SecAggParameters.self, [
            1: ("num_shares", .varint), 2: ("reconstruction_threshold", .varint), 3: ("clipping_range", .fixed64),
            4: ("quantization_range", .varint), 5: ("modulus_range", .varint), 6: ("max_weight", .varint),
        ]),
        schema("SecAggSetup", Flwr__SecAggSetup.self, [
            1: ("round", .varint), 2: ("client_index", .varint), 3: ("num_clients", .varint), 4: ("vector_length", .varint),
            5: ("parameters", .message(secAggParameters)),
        ]),
        schema("SecAggPublicKeys", Flwr__SecAggPublicKeys.self, [
            1: ("round", .varint), 2: ("sender", .varint), 3: ("encryption_key", secAggKey), 4: ("mask_key", secAggKey),
        ]),
        schema("SecAggNeighbourKeys", Flwr__SecAggNeighbourKeys.self, [
            1: ("round", .varint), 2: ("receiver", .varint), 3: ("neighbours", .counted(secAggPublicKeys, .secAggEntries)),
        ]),
        schema("SecAggEncryptedShare", Flwr__SecAggEncryptedShare.self, [
            1: ("sender", .varint), 2: ("receiver", .varint), 3: ("ciphertext", .bytes(max: WireLimits.secAggCiphertextBytes)),
        ]),
        schema("SecAggShareKeys", Flwr__SecAggShareKeys.self, [
            1: ("round", .varint), 2: ("sender", .varint), 3: ("shares", .counted(secAggEncryptedShare, .secAggEntries)),
        ]),
        schema("SecAggForwardedShares", Flwr__SecAggForwardedShares.self, [
            1: ("round", .varint), 2: ("receiver", .varint), 3: ("shares", .counted(secAggEncryptedShare, .secAggEntries)),
        ]),
        // The masked vector is bounded by the frame only (4 bytes per model value, copied once).
        schema("SecAggMaskedInput", Flwr__SecAggMaskedInput.self, [
            1: ("round", .varint), 2: ("sender", .varint), 3: ("vector", .bytes(max: nil)),
            4: ("metrics", .counted(mapEntry, .mapEntries)),
        ]),
        schema("SecAggUnmaskRequest", Flwr__SecAggUnmaskRequest.self, [
            1: ("round", .varint), 2: ("receiver", .varint), 3: ("seed_shares_of", secAggIndices), 4: ("key_shares_of", secAggIndices),
        ]),
        schema("SecAggShare", Flwr__SecAggShare.self, [1: ("owner", .varint), 2: ("values", .bytes(max: WireLimits.secAggShareBytes))]),
        schema("SecAggUnmaskResponse", Flwr__SecAggUnmaskResponse.self, [
            1: ("round", .varint), 2: ("sender", .varint), 3: ("seed_shares", .counted(secAggShare, .secAggEntries)),
            4: ("key_shares", .counted(secAggShare, .secAggEntries)),
        ]),
        // Compressed update data is bounded by the frame only (1-2 bytes per model value, copied once).
        schema("CompressedTensor", Flwr__CompressedTensor.self, [1: ("count", .varint), 2: ("scale", .fixed64), 3: ("data", .bytes(max: nil))]),
    ]

    /// Walks `payload` as the given envelope; throws `WireError.limitExceeded` (a bound of
    /// `WireLimits`, or more decoder memory than the budget) or `.malformedMessage` (structure,
    /// wire type, UTF-8, NUL), naming the field and its byte position.
    /// Returns the message's decode budget (`WireLimits.decodeBudget`) for the allocator.
    @discardableResult
    static func check(_ payload: UnsafeRawBufferPointer, envelope: TensorScanner.Envelope) throws -> Int {
        var walker = Walker(scanner: TensorScanner.Scanner(bytes: payload))
        let top = schemas[envelope == .server ? serverMessage : clientMessage]
        try walker.walk(top, path: top.name, from: 0, to: payload.count)
        let budget = WireLimits.decodeBudget(payloadBytes: payload.count, elements: walker.tensors + walker.mapEntries + walker.secAggEntries)
        guard walker.cost <= budget else {
            throw WireError.limitExceeded("decoding this \(payload.count)-byte \(top.name) would allocate at least \(walker.cost) bytes (\(walker.fields) fields); \(budgetRule(budget))")
        }
        return budget
    }

    /// How a budget was computed, for error messages.
    static func budgetRule(_ budget: Int) -> String {
        "a message may use at most \(budget) (\(WireLimits.decodeBudgetFactor)× its size + \(WireLimits.decodeBudgetSlack >> 20) MiB + \(WireLimits.decodeBudgetPerElement) per tensor or map entry)"
    }

    /// Malloc overhead counted per allocated block (glibc: 8-16 bytes and 16-byte rounding).
    static let blockOverhead = 16
    /// `sizeof(ScannedMember)` in libprotobuf-c 1.4: one per field occurrence past the 16 a
    /// message keeps on the stack.
    static let scannedMemberSize = 32
    /// `sizeof(ProtobufCMessageUnknownField)`.
    static let unknownFieldSize = MemoryLayout<ProtobufCMessageUnknownField>.size

    struct Walker {
        let scanner: TensorScanner.Scanner
        /// Payload-wide counts (map entries, tensors) and per-message ones (shape, compressions).
        var mapEntries = 0, tensors = 0, shapeDims = 0, compressions = 0, secAggEntries = 0
        /// Lower bound of what libprotobuf-c allocates for what was walked so far, and field count.
        var cost = 0, fields = 0

        var bytes: UnsafeRawBufferPointer { scanner.bytes }

        mutating func walk(_ schema: Schema, path: String, from start: Int, to end: Int) throws {
            let saved = (shapeDims, compressions)
            (shapeDims, compressions) = (0, 0)
            defer { (shapeDims, compressions) = saved }
            cost += schema.cSize + blockOverhead
            var pos = start
            var occurrences = 0
            var unknown = 0
            while pos < end {
                let f = try scanner.field(at: pos, end: end, in: .named(schema.name))
                pos = f.end
                occurrences += 1
                fields += 1
                if occurrences > 16 { cost += scannedMemberSize }
                guard let spec = schema.fields[f.number] else {  // unknown: kept aside by libprotobuf-c, ignored by us
                    unknown += 1
                    cost += unknownFieldSize + (f.end - f.tagEnd) + blockOverhead
                    continue
                }
                try check(spec.rule, f, "\(path).\(spec.name) at byte \(f.start)", path: "\(path).\(spec.name)")
            }
            if unknown > 0 { cost += blockOverhead }  // the unknown-field array itself
        }

        private mutating func check(_ rule: Rule, _ f: TensorScanner.Field, _ where_: String, path: String) throws {
            func wireType(_ expected: UInt8) throws {
                guard f.wireType == expected else {
                    throw WireError.malformedMessage("\(where_) has wire type \(f.wireType); it must be \(expected)")
                }
            }
            let length = f.end - f.valueStart
            switch rule {
            case .varint: try wireType(0)
            case .fixed64: try wireType(1)
            case .string(let max, let printable):
                try wireType(2)
                guard length <= max else {
                    throw WireError.limitExceeded("\(where_) is \(length) bytes; at most \(max) are allowed")
                }
                let raw = UnsafeRawBufferPointer(rebasing: bytes[f.valueStart ..< f.end])
                if let nul = raw.firstIndex(of: 0) {
                    throw WireError.malformedMessage("\(where_) contains a NUL byte (at offset \(nul)); strings must not contain NUL")
                }
                guard let text = String(validating: raw, as: UTF8.self) else {
                    throw WireError.malformedMessage("\(where_) is not valid UTF-8")
                }
                if printable && !PeerText.isPrintable(text) {
                    throw WireError.malformedMessage("\(where_) (\"\(PeerText.escape(text, maxBytes: 64))\") contains control, format or backslash characters; use printable text")
                }
                cost += length + 1 + blockOverhead
            case .bytes(let max):
                try wireType(2)
                if let max, length > max {
                    throw WireError.limitExceeded("\(where_) is \(length) bytes; at most \(max) are allowed")
                }
                if length > 0 { cost += length + blockOverhead }
            case .tensorData:
                try wireType(2)
                if length > 0 { cost += TensorScanner.tokenSize + blockOverhead }
            case .message(let index):
                try wireType(2)
                try walk(schemas[index], path: path, from: f.valueStart, to: f.end)
            case .counted(let index, let counter):
                try wireType(2)
                try count(counter, by: 1, where_)
                cost += MemoryLayout<UnsafeRawPointer>.size  // its slot in the pointer array
                try walk(schemas[index], path: path, from: f.valueStart, to: f.end)
            case .repeatedVarint(let counter):
                var n = 1
                if f.wireType != 0 {
                    try wireType(2)  // packed: one element per byte without its continuation bit
                    n = 0
                    for i in f.valueStart ..< f.end where bytes[i] & 0x80 == 0 { n += 1 }
                    if length > 0 && bytes[f.end - 1] & 0x80 != 0 {
                        throw WireError.malformedMessage("\(where_): packed varints end inside a varint")
                    }
                }
                try count(counter, by: n, where_)
                cost += n * counter.elementSize
            }
        }

        private mutating func count(_ counter: Counter, by n: Int, _ where_: String) throws {
            let total: Int
            switch counter {
            case .mapEntries: mapEntries += n; total = mapEntries
            case .tensors: tensors += n; total = tensors
            case .shapeDims: shapeDims += n; total = shapeDims
            case .compressions: compressions += n; total = compressions
            case .secAggEntries: secAggEntries += n; total = secAggEntries
            }
            guard total <= counter.limit else {
                throw WireError.limitExceeded("\(where_): more than \(counter.limit) \(counter.advice)")
            }
        }
    }
}
