// Swift messages → packed protobuf through libprotobuf-c.
//
// The C message tree is built in a `CArena` (freed when encoding ends, on every path); tensor
// `data` fields point straight into `Parameters.values`, so `pack` writes each float exactly once:
// from the model's buffer into the outgoing frame (the one copy per direction).
import CFlowerProto
import FlowerCore
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

#if _endian(big)
#error("FlowerWire sends float32 little-endian by reinterpreting memory; add a byte swap for big-endian hosts")
#endif

/// Owns every C block of one message under construction; frees them all at deinit.
final class CArena {
    private var blocks: [UnsafeMutableRawPointer] = []

    deinit { for block in blocks { free(block) } }

    /// `count` zeroed values of `T`.
    func make<T>(_ type: T.Type, count: Int = 1) throws -> UnsafeMutablePointer<T> {
        guard let raw = calloc(max(count, 1), MemoryLayout<T>.stride) else {
            throw WireError.cannotEncode("out of memory building a \(T.self) message")
        }
        blocks.append(raw)
        return raw.bindMemory(to: T.self, capacity: max(count, 1))
    }

    /// A NUL-terminated copy of `s` (which must not itself contain NUL).
    func cString(_ s: String) throws -> UnsafeMutablePointer<CChar> {
        let utf8 = Array(s.utf8)
        guard !utf8.contains(0) else {
            throw WireError.cannotEncode("string \(s.debugDescription) contains a NUL byte, which protobuf-c strings cannot carry")
        }
        let p = try make(CChar.self, count: utf8.count + 1)
        for (i, byte) in utf8.enumerated() { p[i] = CChar(bitPattern: byte) }
        return p
    }

    /// Free text for the peer's logs (reasons, messages, agent): NUL replaced by U+FFFD and cut
    /// at a character boundary to `WireLimits.maxTextBytes`, so a long error message never makes
    /// a result the receiver would refuse.
    func text(_ s: String) throws -> UnsafeMutablePointer<CChar> {
        try cString(WireLimits.sendableText(s))
    }

    /// An identifier or name the receiver checks (`WireLimits`): at most `max` bytes of printable
    /// text, or `cannotEncode` saying which field and what to change.
    func checked(_ s: String, _ field: String, max: Int, printable: Bool = true) throws -> UnsafeMutablePointer<CChar> {
        guard s.utf8.count <= max else {
            throw WireError.cannotEncode("\(field) of \(s.utf8.count) bytes exceeds \(max) (proto/README.md, \"Limits\"); shorten it")
        }
        guard !printable || PeerText.isPrintable(s) else {
            throw WireError.cannotEncode("\(field) \"\(PeerText.escape(s, maxBytes: 64))\" contains control, format or backslash characters; use printable text")
        }
        return try cString(s)
    }

    /// A copy of `bytes` as protobuf `bytes`.
    func binary(_ bytes: [UInt8]) throws -> ProtobufCBinaryData {
        guard !bytes.isEmpty else { return ProtobufCBinaryData(len: 0, data: nil) }
        let p = try make(UInt8.self, count: bytes.count)
        p.initialize(from: bytes, count: bytes.count)
        return ProtobufCBinaryData(len: bytes.count, data: p)
    }

    func scalar(_ value: Scalar) throws -> UnsafeMutablePointer<Flwr__Scalar> {
        let s = try make(Flwr__Scalar.self)
        flwr__scalar__init(s)
        switch value {
        case .double(let d): s.pointee.value_case = FLWR__SCALAR__VALUE_DOUBLE_VALUE; s.pointee.double_value = d
        case .int(let i): s.pointee.value_case = FLWR__SCALAR__VALUE_INT64_VALUE; s.pointee.int64_value = i
        case .bool(let b): s.pointee.value_case = FLWR__SCALAR__VALUE_BOOL_VALUE; s.pointee.bool_value = b ? 1 : 0
        case .string(let str): s.pointee.value_case = FLWR__SCALAR__VALUE_STRING_VALUE; s.pointee.string_value = try checked(str, "string value", max: WireLimits.maxStringValueBytes, printable: false)
        case .bytes(let b): s.pointee.value_case = FLWR__SCALAR__VALUE_BYTES_VALUE; s.pointee.bytes_value = try binary(b)
        }
        return s
    }

    /// A protobuf map (repeated entries) from a dictionary, keys sorted so bytes are deterministic.
    func map<E>(_ dict: [String: Scalar], initEntry: (UnsafeMutablePointer<E>) -> Void,
                key: WritableKeyPath<E, UnsafeMutablePointer<CChar>?>,
                value: WritableKeyPath<E, UnsafeMutablePointer<Flwr__Scalar>?>) throws
        -> (count: Int, entries: UnsafeMutablePointer<UnsafeMutablePointer<E>?>?) {
        guard !dict.isEmpty else { return (0, nil) }
        let entries = try make(E.self, count: dict.count)
        let pointers = try make(UnsafeMutablePointer<E>?.self, count: dict.count)
        for (i, k) in dict.keys.sorted().enumerated() {
            let e = entries + i
            initEntry(e)
            e.pointee[keyPath: key] = try checked(k, "config/metrics key", max: WireLimits.maxNameBytes)
            e.pointee[keyPath: value] = try scalar(dict[k] ?? .int(0))
            pointers[i] = e
        }
        return (dict.count, pointers)
    }

    func status(_ st: Status) throws -> UnsafeMutablePointer<Flwr__Status> {
        let s = try make(Flwr__Status.self)
        flwr__status__init(s)
        switch st.code {
        case .ok: s.pointee.code = FLWR__STATUS__CODE__OK
        case .fitFailed: s.pointee.code = FLWR__STATUS__CODE__FIT_FAILED
        case .evaluateFailed: s.pointee.code = FLWR__STATUS__CODE__EVALUATE_FAILED
        case .getParametersFailed: s.pointee.code = FLWR__STATUS__CODE__GET_PARAMETERS_FAILED
        case .badInstruction: s.pointee.code = FLWR__STATUS__CODE__BAD_INSTRUCTION
        }
        s.pointee.message = try text(st.message)
        return s
    }

    /// A list of C messages (`count` structs and the pointer array), each filled by `fill`.
    func list<T>(_ count: Int, _ type: T.Type, _ fill: (Int, UnsafeMutablePointer<T>) throws -> Void) throws
        -> (count: Int, items: UnsafeMutablePointer<UnsafeMutablePointer<T>?>?) {
        guard count > 0 else { return (0, nil) }
        let items = try make(T.self, count: count)
        let pointers = try make(UnsafeMutablePointer<T>?.self, count: count)
        for i in 0 ..< count {
            try fill(i, items + i)
            pointers[i] = items + i
        }
        return (count, pointers)
    }

    /// Little-endian bytes of `values` (uint32 lists and vectors of secure aggregation).
    func littleEndian(_ values: [UInt32]) throws -> ProtobufCBinaryData {
        guard !values.isEmpty else { return ProtobufCBinaryData(len: 0, data: nil) }
        let p = try make(UInt8.self, count: 4 * values.count)
        values.withUnsafeBytes { UnsafeMutableRawPointer(p).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        return ProtobufCBinaryData(len: 4 * values.count, data: p)
    }

    /// Little-endian bytes of `values` (a share's field elements).
    func littleEndian(_ values: [UInt64]) throws -> ProtobufCBinaryData {
        guard !values.isEmpty else { return ProtobufCBinaryData(len: 0, data: nil) }
        let p = try make(UInt8.self, count: 8 * values.count)
        values.withUnsafeBytes { UnsafeMutableRawPointer(p).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        return ProtobufCBinaryData(len: 8 * values.count, data: p)
    }

    func secAggKeys(_ k: SecAggPublicKeys, into x: UnsafeMutablePointer<Flwr__SecAggPublicKeys>) throws {
        flwr__sec_agg_public_keys__init(x)
        x.pointee.round = k.round
        x.pointee.sender = k.sender
        x.pointee.encryption_key = try binary(k.encryptionKey)
        x.pointee.mask_key = try binary(k.maskKey)
    }

    func secAggShares(_ shares: [SecAggEncryptedShare]) throws
        -> (count: Int, items: UnsafeMutablePointer<UnsafeMutablePointer<Flwr__SecAggEncryptedShare>?>?) {
        try list(shares.count, Flwr__SecAggEncryptedShare.self) { i, x in
            flwr__sec_agg_encrypted_share__init(x)
            x.pointee.sender = shares[i].sender
            x.pointee.receiver = shares[i].receiver
            x.pointee.ciphertext = try binary(shares[i].ciphertext)
        }
    }

    func secAggShareValues(_ shares: [SecAggShare]) throws
        -> (count: Int, items: UnsafeMutablePointer<UnsafeMutablePointer<Flwr__SecAggShare>?>?) {
        try list(shares.count, Flwr__SecAggShare.self) { i, x in
            flwr__sec_agg_share__init(x)
            x.pointee.owner = shares[i].owner
            x.pointee.values = try littleEndian(shares[i].values)
        }
    }

    /// Tensors whose `data` points into `values` (no copy); valid while `values` is. With `fp16`,
    /// binary16 copies in the arena instead (round-to-nearest; a weight beyond ±65504 throws).
    func parameters(_ p: Parameters, values: UnsafeBufferPointer<Float>, fp16: Bool = false) throws -> UnsafeMutablePointer<Flwr__Parameters> {
        let out = try make(Flwr__Parameters.self)
        flwr__parameters__init(out)
        let n = p.layout.count
        guard n > 0 else { return out }
        let tensors = try make(Flwr__Tensor.self, count: n)
        let pointers = try make(UnsafeMutablePointer<Flwr__Tensor>?.self, count: n)
        for (i, spec) in p.layout.enumerated() {
            let t = tensors + i
            flwr__tensor__init(t)
            t.pointee.name = try checked(spec.name, "tensor name", max: WireLimits.maxNameBytes)
            let shape = try make(Int64.self, count: spec.shape.count)
            for (j, d) in spec.shape.enumerated() { shape[j] = Int64(d) }
            t.pointee.n_shape = spec.shape.count
            t.pointee.shape = spec.shape.isEmpty ? nil : shape
            t.pointee.dtype = fp16 ? FLWR__DTYPE__DTYPE_FLOAT16 : FLWR__DTYPE__DTYPE_FLOAT32
            let count = spec.count
            if fp16, count > 0 {
                precondition(spec.offset >= 0 && spec.offset + count <= values.count, "Parameters layout outside its buffer")
                let halves = try make(UInt16.self, count: count)
                for j in 0 ..< count {
                    let h = Float16(values[spec.offset + j])
                    guard h.isFinite else {
                        throw WireError.cannotEncode("tensor \(spec.name): weight \(values[spec.offset + j]) does not fit fp16 (|x| <= 65504); use --broadcast-compression none")
                    }
                    halves[j] = h.bitPattern.littleEndian
                }
                t.pointee.data = ProtobufCBinaryData(len: count * 2, data: UnsafeMutableRawPointer(halves).assumingMemoryBound(to: UInt8.self))
            } else if count > 0, let base = values.baseAddress {
                precondition(spec.offset >= 0 && spec.offset + count <= values.count, "Parameters layout outside its buffer")
                let bytes = UnsafeMutableRawPointer(mutating: base + spec.offset).assumingMemoryBound(to: UInt8.self)
                t.pointee.data = ProtobufCBinaryData(len: count * MemoryLayout<Float>.size, data: bytes)
            }
            pointers[i] = t
        }
        out.pointee.n_tensors = n
        out.pointee.tensors = pointers
        return out
    }
}

/// Packs messages into frames (`FrameHeader.size` bytes of header space, then the payload).
public enum WireEncoder {
    /// A whole frame carrying `message`; compressed when `compression` and it pays.
    /// Throws `cannotEncode` when the payload exceeds `peerLimit` (the receiver's --max-frame-mb).
    /// `broadcast` fp16 sends a FitIns's or EvaluateIns's parameters as binary16.
    public static func frame(_ message: ServerMessage, compression: Bool = false, peerLimit: Int = FrameHeader.maxLength,
                             broadcast: BroadcastCompression = .none) throws -> [UInt8] {
        var out = try withValues(message.parameters) { values in
            try packServer(message, values: values, peerLimit: peerLimit, fp16: broadcast == .fp16, into: arrayOutput)
        }
        try FrameEncoder.finish(&out, allowCompression: compression)
        return out
    }

    /// A whole frame carrying `message`; compressed when `compression` and it pays.
    public static func frame(_ message: ClientMessage, compression: Bool = false, peerLimit: Int = FrameHeader.maxLength) throws -> [UInt8] {
        var out = try withValues(message.parameters) { values in
            try packClient(message, values: values, peerLimit: peerLimit, into: arrayOutput)
        }
        try FrameEncoder.finish(&out, allowCompression: compression)
        return out
    }

    /// The frame carrying `message` as a `ByteBuffer` to write to channels: protobuf-c packs
    /// straight into the buffer (each float written once); the same buffer can be written to any
    /// number of connections (reference-counted, never copied).
    /// `broadcast` fp16 sends a FitIns's or EvaluateIns's parameters as binary16.
    public static func frameBuffer(_ message: ServerMessage, compression: Bool = false, peerLimit: Int = FrameHeader.maxLength,
                                   allocator: ByteBufferAllocator = ByteBufferAllocator(),
                                   broadcast: BroadcastCompression = .none) throws -> ByteBuffer {
        var frame = try withValues(message.parameters) { values in
            try packServer(message, values: values, peerLimit: peerLimit, fp16: broadcast == .fp16, into: bufferOutput(allocator))
        }
        try FrameEncoder.finish(&frame, allowCompression: compression, allocator: allocator)
        return frame
    }

    /// The frame carrying `message` as a `ByteBuffer` (see the `ServerMessage` overload).
    public static func frameBuffer(_ message: ClientMessage, compression: Bool = false, peerLimit: Int = FrameHeader.maxLength,
                                   allocator: ByteBufferAllocator = ByteBufferAllocator()) throws -> ByteBuffer {
        var frame = try withValues(message.parameters) { values in
            try packClient(message, values: values, peerLimit: peerLimit, into: bufferOutput(allocator))
        }
        try FrameEncoder.finish(&frame, allowCompression: compression, allocator: allocator)
        return frame
    }

    private static func withValues<R>(_ p: Parameters?, _ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        guard let p else { return try body(UnsafeBufferPointer(start: nil, count: 0)) }
        return try p.values.withUnsafeBufferPointer { try body($0) }
    }

    /// Where a packed message goes: given its size and a packer, returns the frame storage.
    typealias Output<R> = (_ size: Int, _ peerLimit: Int, _ kind: String, _ pack: (UnsafeMutablePointer<UInt8>) -> Int) throws -> R

    private static func checkSize(_ size: Int, peerLimit: Int, kind: String) throws {
        guard size <= peerLimit else {
            throw WireError.cannotEncode("\(kind) of \(size) bytes exceeds the receiver's frame limit of \(peerLimit) bytes; raise --max-frame-mb on the receiving side")
        }
    }

    private static func arrayOutput(size: Int, peerLimit: Int, kind: String, _ pack: (UnsafeMutablePointer<UInt8>) -> Int) throws -> [UInt8] {
        try checkSize(size, peerLimit: peerLimit, kind: kind)
        return try [UInt8](unsafeUninitializedCapacity: FrameHeader.size + size) { buf, count in
            guard let base = buf.baseAddress else { throw WireError.cannotEncode("out of memory for a \(size)-byte frame") }
            let written = pack(base + FrameHeader.size)
            precondition(written == size, "protobuf-c packed \(written) bytes, predicted \(size)")
            count = FrameHeader.size + size
        }
    }

    private static func bufferOutput(_ allocator: ByteBufferAllocator) -> Output<ByteBuffer> {
        { size, peerLimit, kind, pack in
            try checkSize(size, peerLimit: peerLimit, kind: kind)
            var buffer = allocator.buffer(capacity: FrameHeader.size + size)
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: FrameHeader.size + size) { raw in
                guard let base = raw.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return 0 }
                let written = pack(base + FrameHeader.size)
                precondition(written == size, "protobuf-c packed \(written) bytes, predicted \(size)")
                return FrameHeader.size + size
            }
            return buffer
        }
    }

    private static func packServer<R>(_ message: ServerMessage, values: UnsafeBufferPointer<Float>, peerLimit: Int, fp16: Bool = false,
                                      into output: Output<R>) throws -> R {
        let arena = CArena()
        let m = try arena.make(Flwr__ServerMessage.self)
        flwr__server_message__init(m)
        switch message {
        case .challenge(let c):
            let x = try arena.make(Flwr__Challenge.self); flwr__challenge__init(x)
            x.pointee.protocol_version = c.protocolVersion
            x.pointee.nonce = try arena.binary(c.nonce)
            x.pointee.auth_required = c.authRequired ? 1 : 0
            x.pointee.max_frame_bytes = UInt64(max(0, c.maxFrameBytes))
            m.pointee.msg_case = FLWR__SERVER_MESSAGE__MSG_CHALLENGE; m.pointee.challenge = x
        case .welcome(let w):
            let x = try arena.make(Flwr__Welcome.self); flwr__welcome__init(x)
            x.pointee.protocol_version = w.protocolVersion
            x.pointee.session_id = try arena.checked(w.sessionID, "session_id", max: WireLimits.maxIdentifierBytes)
            x.pointee.compression = w.zlib ? FLWR__COMPRESSION__COMPRESSION_ZLIB : FLWR__COMPRESSION__COMPRESSION_NONE
            x.pointee.model = try arena.cString(w.model)
            x.pointee.update_encoding = w.updateCompression.protoEncoding
            if case .topk(let fraction, let errorFeedback, let global, let warmup, let varint, let int8) = w.updateCompression {
                x.pointee.update_encoding = FLWR__UPDATE_ENCODING__UPDATE_ENCODING_TOPK
                x.pointee.topk_fraction = fraction
                x.pointee.topk_no_error_feedback = errorFeedback ? 0 : 1
                x.pointee.topk_global = global ? 1 : 0
                x.pointee.topk_warmup_rounds = UInt32(clamping: warmup)
                // Announced as flags, not as the encoding itself: Welcome.update_encoding stays TOPK
                // for clients that do not read them. int8 values come with varint indices, so a
                // client that reads only the varint flag sends TOPK_VARINT.
                x.pointee.topk_varint_indices = varint || int8 ? 1 : 0
                x.pointee.topk_int8_values = int8 ? 1 : 0
            }
            m.pointee.msg_case = FLWR__SERVER_MESSAGE__MSG_WELCOME; m.pointee.welcome = x
        case .refusal(let r):
            let x = try arena.make(Flwr__Refusal.self); flwr__refusal__init(x)
            x.pointee.reason = r.reason.proto
            x.pointee.message = try arena.text(r.message)
            m.pointee.msg_case = FLWR__SERVER_MESSAGE__MSG_REFUSAL; m.pointee.refusal = x
        case .getParameters(let ins):
            let x = try arena.make(Flwr__GetParametersIns.self); flwr__get_parameters_ins__init(x)
            (x.pointee.n_config, x.pointee.config) = try arena.map(ins.config, initEntry: { flwr__get_parameters_ins__config_entry__init($0) }, key: \.key, value: \.value)
            m.pointee.msg_case = FLWR__SERVER_MESSAGE__MSG_GET_PARAMETERS_INS; m.pointee.get_parameters_ins = x
        case .fit(let ins):
            let x = try arena.make(Flwr__FitIns.self); flwr__fit_ins__init(x)
            x.pointee.round = UInt64(max(0, ins.round))
            x.pointee.parameters = try arena.parameters(ins.parameters, values: values, fp16: fp16)
            (x.pointee.n_config, x.pointee.config) = try arena.map(ins.config, initEntry: { flwr__fit_ins__config_entry__init($0) }, key: \.key, value: \.value)
            m.pointee.msg_case = FLWR__SERVER_MESSAGE__MSG_FIT_INS; m.pointee.fit_ins = x
        case .evaluate(let ins):
            let x = try arena.make(Flwr__EvaluateIns.self); flwr__evaluate_ins__init(x)
            x.pointee.round = UInt64(max(0, ins.round))
            x.pointee.parameters = try arena.parameters(ins.parameters, values: values, fp16: fp16)
            (x.pointee.n_config, x.pointee.config) = try arena.map(ins.config, initEntry: { flwr__evaluate_ins__config_entry__init($0) }, key: \.key, value: \.value)
            m.pointee.msg_case = FLWR__SERVER_MESSAGE__MSG_EVALUATE_INS; m.pointee.evaluate_ins = x
        case .reconnect(let seconds, let reason):
            let x = try arena.make(Flwr__Reconnect.self); flwr__reconnect__init(x)
            x.pointee.seconds = UInt32(clamping: seconds)
            x.pointee.reason = try arena.text(reason)
            m.pointee.msg_case = FLWR__SERVER_MESSAGE__MSG_RECONNECT; m.pointee.reconnect = x
        case .finish(let rounds, let reason, let failed):
            let x = try arena.make(Flwr__Finish.self); flwr__finish__init(x)
            x.pointee.rounds_completed = UInt64(max(0, rounds))
            x.pointee.failed = failed ? 1 : 0
            x.pointee.reason = try arena.text(reason)
            m.pointee.msg_case = FLWR__SERVER_MESSAGE__MSG_FINISH; m.pointee.finish = x
        case .secAggSetup(let setup):
            let x = try arena.make(Flwr__SecAggSetup.self); flwr__sec_agg_setup__init(x)
            x.pointee.round = setup.round
            x.pointee.client_index = setup.clientIndex
            x.pointee.num_clients = setup.numClients
            x.pointee.vector_length = setup.vectorLength
            let p = try arena.make(Flwr__SecAggParameters.self); flwr__sec_agg_parameters__init(p)
            p.pointee.num_shares = UInt32(clamping: setup.parameters.numShares)
            p.pointee.reconstruction_threshold = UInt32(clamping: setup.parameters.reconstructionThreshold)
            p.pointee.clipping_range = setup.parameters.clippingRange
            p.pointee.quantization_range = setup.parameters.quantizationRange
            p.pointee.modulus_range = setup.parameters.modulusRange
            p.pointee.max_weight = setup.parameters.maxWeight
            x.pointee.parameters = p
            m.pointee.msg_case = FLWR__SERVER_MESSAGE__MSG_SECAGG_SETUP; m.pointee.secagg_setup = x
        case .secAggNeighbourKeys(let n):
            let x = try arena.make(Flwr__SecAggNeighbourKeys.self); flwr__sec_agg_neighbour_keys__init(x)
            x.pointee.round = n.round
            x.pointee.receiver = n.receiver
            (x.pointee.n_neighbours, x.pointee.neighbours) = try arena.list(n.neighbours.count, Flwr__SecAggPublicKeys.self) { i, k in
                try arena.secAggKeys(n.neighbours[i], into: k)
            }
            m.pointee.msg_case = FLWR__SERVER_MESSAGE__MSG_SECAGG_NEIGHBOUR_KEYS; m.pointee.secagg_neighbour_keys = x
        case .secAggForwardedShares(let f):
            let x = try arena.make(Flwr__SecAggForwardedShares.self); flwr__sec_agg_forwarded_shares__init(x)
            x.pointee.round = f.round
            x.pointee.receiver = f.receiver
            (x.pointee.n_shares, x.pointee.shares) = try arena.secAggShares(f.shares)
            m.pointee.msg_case = FLWR__SERVER_MESSAGE__MSG_SECAGG_FORWARDED_SHARES; m.pointee.secagg_forwarded_shares = x
        case .secAggUnmaskRequest(let r):
            let x = try arena.make(Flwr__SecAggUnmaskRequest.self); flwr__sec_agg_unmask_request__init(x)
            x.pointee.round = r.round
            x.pointee.receiver = r.receiver
            x.pointee.seed_shares_of = try arena.littleEndian(r.seedSharesOf)
            x.pointee.key_shares_of = try arena.littleEndian(r.keySharesOf)
            m.pointee.msg_case = FLWR__SERVER_MESSAGE__MSG_SECAGG_UNMASK_REQUEST; m.pointee.secagg_unmask_request = x
        }
        let size = flwr__server_message__get_packed_size(m)
        return try output(size, peerLimit, message.kind) { flwr__server_message__pack(m, $0) }
    }

    private static func packClient<R>(_ message: ClientMessage, values: UnsafeBufferPointer<Float>, peerLimit: Int, into output: Output<R>) throws -> R {
        let arena = CArena()
        let m = try arena.make(Flwr__ClientMessage.self)
        flwr__client_message__init(m)
        switch message {
        case .hello(let h):
            let x = try arena.make(Flwr__Hello.self); flwr__hello__init(x)
            x.pointee.protocol_version = h.protocolVersion
            x.pointee.client_id = try arena.checked(h.clientID, "client_id", max: WireLimits.maxIdentifierBytes)
            x.pointee.partition = Int64(h.partition ?? -1)
            if h.acceptsZlib {
                let c = try arena.make(Flwr__Compression.self)
                c.pointee = FLWR__COMPRESSION__COMPRESSION_ZLIB
                x.pointee.n_accept_compression = 1; x.pointee.accept_compression = c
            }
            x.pointee.auth_proof = try arena.binary(h.authProof)
            x.pointee.agent = try arena.text(h.agent)
            x.pointee.max_frame_bytes = UInt64(max(0, h.maxFrameBytes))
            x.pointee.model = try arena.cString(h.model)
            m.pointee.msg_case = FLWR__CLIENT_MESSAGE__MSG_HELLO; m.pointee.hello = x
        case .parametersRes(let res):
            let x = try arena.make(Flwr__ParametersRes.self); flwr__parameters_res__init(x)
            x.pointee.status = try arena.status(res.status)
            x.pointee.parameters = try arena.parameters(res.parameters, values: values)
            m.pointee.msg_case = FLWR__CLIENT_MESSAGE__MSG_PARAMETERS_RES; m.pointee.parameters_res = x
        case .fitRes(let res):
            let x = try arena.make(Flwr__FitRes.self); flwr__fit_res__init(x)
            x.pointee.status = try arena.status(res.status)
            x.pointee.round = UInt64(max(0, res.round))
            x.pointee.parameters = try arena.parameters(res.parameters, values: values)
            x.pointee.num_examples = Int64(res.numExamples)
            (x.pointee.n_metrics, x.pointee.metrics) = try arena.map(res.metrics, initEntry: { flwr__fit_res__metrics_entry__init($0) }, key: \.key, value: \.value)
            m.pointee.msg_case = FLWR__CLIENT_MESSAGE__MSG_FIT_RES; m.pointee.fit_res = x
        case .compressedFitRes(let res, let update):
            guard update.encoding != .none else {
                throw WireError.cannotEncode("a compressed FitRes needs an update encoding (fp16, int8, int4 or topk)")
            }
            let x = try arena.make(Flwr__FitRes.self); flwr__fit_res__init(x)
            x.pointee.status = try arena.status(res.status)
            x.pointee.round = UInt64(max(0, res.round))
            x.pointee.num_examples = Int64(res.numExamples)
            (x.pointee.n_metrics, x.pointee.metrics) = try arena.map(res.metrics, initEntry: { flwr__fit_res__metrics_entry__init($0) }, key: \.key, value: \.value)
            x.pointee.update_encoding = update.encoding.protoEncoding
            (x.pointee.n_update, x.pointee.update) = try arena.list(update.tensors.count, Flwr__CompressedTensor.self) { i, t in
                flwr__compressed_tensor__init(t)
                t.pointee.count = UInt64(update.tensors[i].count)
                t.pointee.scale = Double(update.tensors[i].scale)
                t.pointee.data = try arena.binary(update.tensors[i].data)
            }
            m.pointee.msg_case = FLWR__CLIENT_MESSAGE__MSG_FIT_RES; m.pointee.fit_res = x
        case .evaluateRes(let res):
            let x = try arena.make(Flwr__EvaluateRes.self); flwr__evaluate_res__init(x)
            x.pointee.status = try arena.status(res.status)
            x.pointee.round = UInt64(max(0, res.round))
            x.pointee.loss = res.loss
            x.pointee.num_examples = Int64(res.numExamples)
            (x.pointee.n_metrics, x.pointee.metrics) = try arena.map(res.metrics, initEntry: { flwr__evaluate_res__metrics_entry__init($0) }, key: \.key, value: \.value)
            m.pointee.msg_case = FLWR__CLIENT_MESSAGE__MSG_EVALUATE_RES; m.pointee.evaluate_res = x
        case .goodbye(let reason):
            let x = try arena.make(Flwr__Goodbye.self); flwr__goodbye__init(x)
            x.pointee.reason = try arena.text(reason)
            m.pointee.msg_case = FLWR__CLIENT_MESSAGE__MSG_GOODBYE; m.pointee.goodbye = x
        case .secAggPublicKeys(let k):
            let x = try arena.make(Flwr__SecAggPublicKeys.self)
            try arena.secAggKeys(k, into: x)
            m.pointee.msg_case = FLWR__CLIENT_MESSAGE__MSG_SECAGG_PUBLIC_KEYS; m.pointee.secagg_public_keys = x
        case .secAggShareKeys(let k):
            let x = try arena.make(Flwr__SecAggShareKeys.self); flwr__sec_agg_share_keys__init(x)
            x.pointee.round = k.round
            x.pointee.sender = k.sender
            (x.pointee.n_shares, x.pointee.shares) = try arena.secAggShares(k.shares)
            m.pointee.msg_case = FLWR__CLIENT_MESSAGE__MSG_SECAGG_SHARE_KEYS; m.pointee.secagg_share_keys = x
        case .secAggMaskedInput(let input, let metrics):
            let x = try arena.make(Flwr__SecAggMaskedInput.self); flwr__sec_agg_masked_input__init(x)
            x.pointee.round = input.round
            x.pointee.sender = input.sender
            x.pointee.vector = try arena.littleEndian(input.vector)
            (x.pointee.n_metrics, x.pointee.metrics) = try arena.map(metrics, initEntry: { flwr__sec_agg_masked_input__metrics_entry__init($0) }, key: \.key, value: \.value)
            m.pointee.msg_case = FLWR__CLIENT_MESSAGE__MSG_SECAGG_MASKED_INPUT; m.pointee.secagg_masked_input = x
        case .secAggUnmaskResponse(let r):
            let x = try arena.make(Flwr__SecAggUnmaskResponse.self); flwr__sec_agg_unmask_response__init(x)
            x.pointee.round = r.round
            x.pointee.sender = r.sender
            (x.pointee.n_seed_shares, x.pointee.seed_shares) = try arena.secAggShareValues(r.seedShares)
            (x.pointee.n_key_shares, x.pointee.key_shares) = try arena.secAggShareValues(r.keyShares)
            m.pointee.msg_case = FLWR__CLIENT_MESSAGE__MSG_SECAGG_UNMASK_RESPONSE; m.pointee.secagg_unmask_response = x
        }
        let size = flwr__client_message__get_packed_size(m)
        return try output(size, peerLimit, message.kind) { flwr__client_message__pack(m, $0) }
    }
}

extension ServerMessage {
    /// The parameters this message carries, if any.
    var parameters: Parameters? {
        switch self {
        case .fit(let ins): return ins.parameters
        case .evaluate(let ins): return ins.parameters
        default: return nil
        }
    }
}

extension ClientMessage {
    /// The parameters this message carries, if any.
    var parameters: Parameters? {
        switch self {
        case .parametersRes(let res): return res.parameters
        case .fitRes(let res): return res.parameters
        default: return nil
        }
    }
}

extension RefusalReason {
    var proto: Flwr__Refusal__Reason {
        switch self {
        case .unspecified: return FLWR__REFUSAL__REASON__UNSPECIFIED
        case .versionMismatch: return FLWR__REFUSAL__REASON__VERSION_MISMATCH
        case .badCredentials: return FLWR__REFUSAL__REASON__BAD_CREDENTIALS
        case .duplicateIdentity: return FLWR__REFUSAL__REASON__DUPLICATE_IDENTITY
        case .serverFull: return FLWR__REFUSAL__REASON__SERVER_FULL
        case .protocolError: return FLWR__REFUSAL__REASON__PROTOCOL_ERROR
        }
    }
}

extension UpdateCompression {
    /// The proto `UpdateEncoding`.
    var protoEncoding: Flwr__UpdateEncoding {
        switch self {
        case .none: return FLWR__UPDATE_ENCODING__UPDATE_ENCODING_NONE
        case .fp16: return FLWR__UPDATE_ENCODING__UPDATE_ENCODING_FP16
        case .int8: return FLWR__UPDATE_ENCODING__UPDATE_ENCODING_INT8
        case .int4: return FLWR__UPDATE_ENCODING__UPDATE_ENCODING_INT4
        case .topk(_, _, _, _, let varint, let int8):
            return int8 ? FLWR__UPDATE_ENCODING__UPDATE_ENCODING_TOPK_INT8
                : varint ? FLWR__UPDATE_ENCODING__UPDATE_ENCODING_TOPK_VARINT : FLWR__UPDATE_ENCODING__UPDATE_ENCODING_TOPK
        }
    }

    /// The encoding a peer announced; an unknown number is refused (the peer speaks a newer protocol).
    /// TOPK reads as `topk(fraction: 1, errorFeedback: true)`: its parameters travel in the Welcome
    /// (read there); a FitRes names only the encoding.
    init(proto: Flwr__UpdateEncoding, field: String) throws {
        switch proto {
        case FLWR__UPDATE_ENCODING__UPDATE_ENCODING_NONE: self = .none
        case FLWR__UPDATE_ENCODING__UPDATE_ENCODING_FP16: self = .fp16
        case FLWR__UPDATE_ENCODING__UPDATE_ENCODING_INT8: self = .int8
        case FLWR__UPDATE_ENCODING__UPDATE_ENCODING_INT4: self = .int4
        case FLWR__UPDATE_ENCODING__UPDATE_ENCODING_TOPK: self = .topk(fraction: 1, errorFeedback: true)
        case FLWR__UPDATE_ENCODING__UPDATE_ENCODING_TOPK_VARINT: self = .topk(fraction: 1, errorFeedback: true, varintIndices: true)
        case FLWR__UPDATE_ENCODING__UPDATE_ENCODING_TOPK_INT8: self = .topk(fraction: 1, errorFeedback: true, varintIndices: true, int8Values: true)
        default:
            throw WireError.malformedMessage("\(field) is \(proto.rawValue), not an update encoding this flwr knows (none, fp16, int8, int4, topk, topk-varint, topk-int8); run the same flwr release on both sides")
        }
    }
}
