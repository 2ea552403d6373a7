// Packed protobuf → Swift messages through libprotobuf-c.
//
// Before libprotobuf-c sees a payload, `PayloadLimits` walks it against `WireLimits` (counts,
// lengths, NUL, UTF-8, wire types, an estimate of the C allocations) and libprotobuf-c then
// allocates through a `DecodeBudget` allocator that refuses past the same budget, so one message
// can make this side allocate at most a small multiple of its size. Every unpacked C tree is
// released by `free_unpacked` in a `defer`, so no path (including a throw halfway through the
// mapping) leaks it. Numbers are range-checked while mapping; free text meant for logs (agent,
// reasons, status and refusal messages) is escaped here with `PeerText.escape`, once, so no log
// line downstream can be forged with it. Tensor data never passes through libprotobuf-c:
// `TensorScanner` replaces it with tokens before `unpack`, and once a tensor is validated (dtype,
// shape, length) its bytes are copied exactly once, from the received payload into the
// `Parameters` flat buffer.
import CFlowerProto
import FlowerCore
import FlowerZlib
#if canImport(Glibc)
import Glibc
#endif

/// Unpacks and validates messages.
public enum WireDecoder {
    /// The `ServerMessage` in a frame (inflating at most `limit` bytes if compressed, reserved
    /// from `budget` while it is decoded: `Frame.withProtobufBytes`).
    public static func serverMessage(_ frame: Frame, limit: Int, budget: InflateBudget = .frames) throws -> ServerMessage {
        try frame.withProtobufBytes(limit: limit, budget: budget) { try serverMessage($0, allocator: nil) }
    }

    /// The `ClientMessage` in a frame (inflating at most `limit` bytes if compressed, reserved
    /// from `budget` while it is decoded: `Frame.withProtobufBytes`).
    public static func clientMessage(_ frame: Frame, limit: Int, budget: InflateBudget = .frames) throws -> ClientMessage {
        try frame.withProtobufBytes(limit: limit, budget: budget) { try clientMessage($0, allocator: nil) }
    }

    /// Unpacks a `ServerMessage` payload.
    public static func serverMessage(_ bytes: [UInt8]) throws -> ServerMessage {
        try bytes.withUnsafeBytes { try serverMessage($0, allocator: nil) }
    }

    /// Unpacks a `ServerMessage` payload, libprotobuf-c allocating through `allocator` (nil: malloc).
    package static func serverMessage(_ payload: UnsafeRawBufferPointer, allocator inner: UnsafeMutablePointer<ProtobufCAllocator>?) throws -> ServerMessage {
        let (scanned, budget) = try scan(payload, .server, "ServerMessage")
        let data = TensorData(payload: payload, ranges: scanned.ranges)
        return try DecodeBudget.with(budget: budget, inner: inner) { allocator, budget in
            let unpacked = unpack(scanned, payload) { flwr__server_message__unpack(allocator, $0, $1) }
            guard let m = unpacked else { throw budget.pointee.failure(payload.count, "ServerMessage") }
            defer { flwr__server_message__free_unpacked(m, allocator) }
            return try mapServer(m.pointee, data)
        }
    }

    private static func mapServer(_ msg: Flwr__ServerMessage, _ data: TensorData) throws -> ServerMessage {
        switch msg.msg_case {
        case FLWR__SERVER_MESSAGE__MSG_CHALLENGE:
            let x = try required(msg.challenge, "Challenge").pointee
            return .challenge(Challenge(protocolVersion: x.protocol_version, nonce: binary(x.nonce),
                                        authRequired: x.auth_required != 0, maxFrameBytes: Int(clamping: x.max_frame_bytes)))
        case FLWR__SERVER_MESSAGE__MSG_WELCOME:
            let x = try required(msg.welcome, "Welcome").pointee
            var updates = try UpdateCompression(proto: x.update_encoding, field: "Welcome.update_encoding")
            if case .topk(_, _, _, _, let varintEncoding, let int8Encoding) = updates {
                guard x.topk_fraction.isFinite, x.topk_fraction > 0, x.topk_fraction <= 1 else {
                    throw WireError.malformedMessage("Welcome.topk_fraction is \(x.topk_fraction); top-k needs a fraction in (0, 1]")
                }
                guard x.topk_warmup_rounds <= UpdateCompression.maxWarmupRounds else {
                    throw WireError.malformedMessage("Welcome.topk_warmup_rounds is \(x.topk_warmup_rounds); at most \(UpdateCompression.maxWarmupRounds)")
                }
                updates = .topk(fraction: x.topk_fraction, errorFeedback: x.topk_no_error_feedback == 0, global: x.topk_global != 0,
                                warmupRounds: Int(x.topk_warmup_rounds),
                                varintIndices: varintEncoding || x.topk_varint_indices != 0 || x.topk_int8_values != 0,
                                int8Values: int8Encoding || x.topk_int8_values != 0)
            }
            return .welcome(Welcome(protocolVersion: x.protocol_version, sessionID: string(x.session_id),  // printable (PayloadLimits)
                                    zlib: x.compression == FLWR__COMPRESSION__COMPRESSION_ZLIB, model: text(x.model),
                                    updateCompression: updates))
        case FLWR__SERVER_MESSAGE__MSG_REFUSAL:
            let x = try required(msg.refusal, "Refusal").pointee
            return .refusal(Refusal(reason: RefusalReason(x.reason), message: text(x.message)))
        case FLWR__SERVER_MESSAGE__MSG_GET_PARAMETERS_INS:
            let x = try required(msg.get_parameters_ins, "GetParametersIns").pointee
            return .getParameters(GetParametersIns(config: try map(x.config, x.n_config, key: \.key, value: \.value)))
        case FLWR__SERVER_MESSAGE__MSG_FIT_INS:
            let x = try required(msg.fit_ins, "FitIns").pointee
            return .fit(FitIns(round: try roundNumber(x.round, "FitIns.round"), parameters: try parameters(x.parameters, data, allowFP16: true),
                               config: try map(x.config, x.n_config, key: \.key, value: \.value)))
        case FLWR__SERVER_MESSAGE__MSG_EVALUATE_INS:
            let x = try required(msg.evaluate_ins, "EvaluateIns").pointee
            return .evaluate(EvaluateIns(round: try roundNumber(x.round, "EvaluateIns.round"), parameters: try parameters(x.parameters, data, allowFP16: true),
                                         config: try map(x.config, x.n_config, key: \.key, value: \.value)))
        case FLWR__SERVER_MESSAGE__MSG_RECONNECT:
            let x = try required(msg.reconnect, "Reconnect").pointee
            guard Int(x.seconds) <= WireLimits.maxReconnectSeconds else {
                throw WireError.limitExceeded("Reconnect.seconds = \(x.seconds) exceeds \(WireLimits.maxReconnectSeconds)")
            }
            return .reconnect(seconds: Int(x.seconds), reason: text(x.reason))
        case FLWR__SERVER_MESSAGE__MSG_FINISH:
            let x = try required(msg.finish, "Finish").pointee
            return .finish(roundsCompleted: try roundNumber(x.rounds_completed, "Finish.rounds_completed"), reason: text(x.reason), failed: x.failed != 0)
        case FLWR__SERVER_MESSAGE__MSG_SECAGG_SETUP:
            let x = try required(msg.secagg_setup, "SecAggSetup").pointee
            let p = try required(x.parameters, "SecAggSetup.parameters").pointee
            // Ranges and the rules between the parameters are the state machine's (`SecAggClient.init`).
            let parameters = SecAggParameters(numShares: Int(p.num_shares), reconstructionThreshold: Int(p.reconstruction_threshold),
                                              clippingRange: p.clipping_range, quantizationRange: p.quantization_range,
                                              modulusRange: p.modulus_range, maxWeight: p.max_weight)
            return .secAggSetup(SecAggSetup(round: x.round, clientIndex: x.client_index, numClients: x.num_clients,
                                            vectorLength: x.vector_length, parameters: parameters))
        case FLWR__SERVER_MESSAGE__MSG_SECAGG_NEIGHBOUR_KEYS:
            let x = try required(msg.secagg_neighbour_keys, "SecAggNeighbourKeys").pointee
            let keys = try items(x.neighbours, x.n_neighbours, "SecAggNeighbourKeys.neighbours").map { k in
                try secAggKeys(k, "SecAggNeighbourKeys.neighbours")
            }
            return .secAggNeighbourKeys(SecAggNeighbourKeys(round: x.round, receiver: x.receiver, neighbours: keys))
        case FLWR__SERVER_MESSAGE__MSG_SECAGG_FORWARDED_SHARES:
            let x = try required(msg.secagg_forwarded_shares, "SecAggForwardedShares").pointee
            return .secAggForwardedShares(SecAggForwardedShares(round: x.round, receiver: x.receiver,
                                                                shares: try encryptedShares(x.shares, x.n_shares, "SecAggForwardedShares.shares")))
        case FLWR__SERVER_MESSAGE__MSG_SECAGG_UNMASK_REQUEST:
            let x = try required(msg.secagg_unmask_request, "SecAggUnmaskRequest").pointee
            return .secAggUnmaskRequest(SecAggUnmaskRequest(round: x.round, receiver: x.receiver,
                                                            seedSharesOf: try uint32s(x.seed_shares_of, "SecAggUnmaskRequest.seed_shares_of"),
                                                            keySharesOf: try uint32s(x.key_shares_of, "SecAggUnmaskRequest.key_shares_of")))
        default:
            throw WireError.malformedMessage("ServerMessage carries no message this version knows (case \(msg.msg_case.rawValue))")
        }
    }

    /// Unpacks a `ClientMessage` payload.
    public static func clientMessage(_ bytes: [UInt8]) throws -> ClientMessage {
        try bytes.withUnsafeBytes { try clientMessage($0, allocator: nil) }
    }

    /// Unpacks a `ClientMessage` payload, libprotobuf-c allocating through `allocator` (nil: malloc).
    package static func clientMessage(_ payload: UnsafeRawBufferPointer, allocator inner: UnsafeMutablePointer<ProtobufCAllocator>?) throws -> ClientMessage {
        let (scanned, budget) = try scan(payload, .client, "ClientMessage")
        let data = TensorData(payload: payload, ranges: scanned.ranges)
        return try DecodeBudget.with(budget: budget, inner: inner) { allocator, budget in
            let unpacked = unpack(scanned, payload) { flwr__client_message__unpack(allocator, $0, $1) }
            guard let m = unpacked else { throw budget.pointee.failure(payload.count, "ClientMessage") }
            defer { flwr__client_message__free_unpacked(m, allocator) }
            return try mapClient(m.pointee, data)
        }
    }

    private static func mapClient(_ msg: Flwr__ClientMessage, _ data: TensorData) throws -> ClientMessage {
        switch msg.msg_case {
        case FLWR__CLIENT_MESSAGE__MSG_HELLO:
            let x = try required(msg.hello, "Hello").pointee
            let accepts = UnsafeBufferPointer(start: x.accept_compression, count: x.accept_compression == nil ? 0 : x.n_accept_compression)
            guard x.partition == -1 || (0 ... Int64(WireLimits.maxPartition)).contains(x.partition) else {
                throw WireError.limitExceeded("Hello.partition = \(x.partition); it must be -1 (none) or 0 ... \(WireLimits.maxPartition)")
            }
            return .hello(Hello(protocolVersion: x.protocol_version, clientID: string(x.client_id),  // printable (PayloadLimits)
                                partition: x.partition >= 0 ? Int(x.partition) : nil,
                                acceptsZlib: accepts.contains(FLWR__COMPRESSION__COMPRESSION_ZLIB),
                                authProof: binary(x.auth_proof), agent: text(x.agent),
                                maxFrameBytes: Int(clamping: x.max_frame_bytes), model: text(x.model)))
        case FLWR__CLIENT_MESSAGE__MSG_PARAMETERS_RES:
            let x = try required(msg.parameters_res, "ParametersRes").pointee
            return .parametersRes(ParametersRes(status: try status(x.status), parameters: try parameters(x.parameters, data)))
        case FLWR__CLIENT_MESSAGE__MSG_FIT_RES:
            let x = try required(msg.fit_res, "FitRes").pointee
            let encoding = try UpdateCompression(proto: x.update_encoding, field: "FitRes.update_encoding")
            if encoding != .none || x.n_update > 0 {
                return try compressedFitRes(x, encoding)
            }
            return .fitRes(FitRes(status: try status(x.status), round: try roundNumber(x.round, "FitRes.round"),
                                  parameters: try parameters(x.parameters, data),
                                  numExamples: try count(x.num_examples, "FitRes.num_examples"),
                                  metrics: try map(x.metrics, x.n_metrics, key: \.key, value: \.value)))
        case FLWR__CLIENT_MESSAGE__MSG_EVALUATE_RES:
            let x = try required(msg.evaluate_res, "EvaluateRes").pointee
            return .evaluateRes(EvaluateRes(status: try status(x.status), round: try roundNumber(x.round, "EvaluateRes.round"),
                                            loss: x.loss, numExamples: try count(x.num_examples, "EvaluateRes.num_examples"),
                                            metrics: try map(x.metrics, x.n_metrics, key: \.key, value: \.value)))
        case FLWR__CLIENT_MESSAGE__MSG_GOODBYE:
            let x = try required(msg.goodbye, "Goodbye").pointee
            return .goodbye(reason: text(x.reason))
        case FLWR__CLIENT_MESSAGE__MSG_SECAGG_PUBLIC_KEYS:
            let x = try required(msg.secagg_public_keys, "SecAggPublicKeys")
            return .secAggPublicKeys(try secAggKeys(x.pointee, "SecAggPublicKeys"))
        case FLWR__CLIENT_MESSAGE__MSG_SECAGG_SHARE_KEYS:
            let x = try required(msg.secagg_share_keys, "SecAggShareKeys").pointee
            return .secAggShareKeys(SecAggShareKeys(round: x.round, sender: x.sender,
                                                    shares: try encryptedShares(x.shares, x.n_shares, "SecAggShareKeys.shares")))
        case FLWR__CLIENT_MESSAGE__MSG_SECAGG_MASKED_INPUT:
            let x = try required(msg.secagg_masked_input, "SecAggMaskedInput").pointee
            // Bounded by the frame (4 bytes a value); its length against the round's is the server's check.
            let vector = try uint32s(x.vector, "SecAggMaskedInput.vector")
            return .secAggMaskedInput(SecAggMaskedInput(round: x.round, sender: x.sender, vector: vector),
                                      metrics: try map(x.metrics, x.n_metrics, key: \.key, value: \.value))
        case FLWR__CLIENT_MESSAGE__MSG_SECAGG_UNMASK_RESPONSE:
            let x = try required(msg.secagg_unmask_response, "SecAggUnmaskResponse").pointee
            return .secAggUnmaskResponse(SecAggUnmaskResponse(
                round: x.round, sender: x.sender,
                seedShares: try shares(x.seed_shares, x.n_seed_shares, "SecAggUnmaskResponse.seed_shares"),
                keyShares: try shares(x.key_shares, x.n_key_shares, "SecAggUnmaskResponse.key_shares")))
        default:
            throw WireError.malformedMessage("ClientMessage carries no message this version knows (case \(msg.msg_case.rawValue))")
        }
    }

    /// `PayloadLimits.check` then `TensorScanner.scan`, structural errors worded like
    /// libprotobuf-c's refusals ("... do not parse as ..."); also returns the decode budget.
    private static func scan(_ payload: UnsafeRawBufferPointer, _ envelope: TensorScanner.Envelope, _ name: String) throws -> (ScannedPayload, Int) {
        do {
            let budget = try PayloadLimits.check(payload, envelope: envelope)
            return (try TensorScanner.scan(payload, envelope: envelope), budget)
        } catch WireError.malformedMessage(let why) {
            throw WireError.malformedMessage("\(payload.count) bytes do not parse as a \(name): \(why)")
        }
    }

    /// Runs libprotobuf-c `unpack` on the rewritten payload, or on the original when it carries no Parameters.
    private static func unpack<M>(_ scanned: ScannedPayload, _ payload: UnsafeRawBufferPointer,
                                  _ body: (Int, UnsafePointer<UInt8>?) -> M?) -> M? {
        if let rewritten = scanned.rewritten {
            return rewritten.withUnsafeBufferPointer { body($0.count, $0.baseAddress) }
        }
        return body(payload.count, payload.baseAddress?.assumingMemoryBound(to: UInt8.self))
    }

    // MARK: Secure aggregation (sizes were bounded by PayloadLimits; exact sizes are checked here)

    /// The C messages of a repeated field (at most `WireLimits.maxSecAggEntries`, PayloadLimits).
    private static func items<T>(_ list: UnsafeMutablePointer<UnsafeMutablePointer<T>?>?, _ n: Int, _ field: String) throws -> [T] {
        guard n > 0, let list else { return [] }
        guard n <= WireLimits.maxSecAggEntries else {
            throw WireError.limitExceeded("\(field) has \(n) entries; at most \(WireLimits.maxSecAggEntries)")
        }
        return try (0 ..< n).map { i in
            guard let item = list[i] else { throw WireError.malformedMessage("\(field)[\(i)] is missing") }
            return item.pointee
        }
    }

    private static func exactBytes(_ b: ProtobufCBinaryData, _ size: Int, _ field: String) throws -> [UInt8] {
        guard b.len == size else { throw WireError.malformedMessage("\(field) is \(b.len) bytes; it must be exactly \(size)") }
        return binary(b)
    }

    private static func secAggKeys(_ k: Flwr__SecAggPublicKeys, _ field: String) throws -> SecAggPublicKeys {
        SecAggPublicKeys(round: k.round, sender: k.sender,
                         encryptionKey: try exactBytes(k.encryption_key, WireLimits.secAggKeyBytes, "\(field).encryption_key"),
                         maskKey: try exactBytes(k.mask_key, WireLimits.secAggKeyBytes, "\(field).mask_key"))
    }

    private static func encryptedShares(_ list: UnsafeMutablePointer<UnsafeMutablePointer<Flwr__SecAggEncryptedShare>?>?, _ n: Int,
                                        _ field: String) throws -> [SecAggEncryptedShare] {
        try items(list, n, field).map { s in
            SecAggEncryptedShare(sender: s.sender, receiver: s.receiver,
                                 ciphertext: try exactBytes(s.ciphertext, WireLimits.secAggCiphertextBytes, "\(field).ciphertext"))
        }
    }

    private static func shares(_ list: UnsafeMutablePointer<UnsafeMutablePointer<Flwr__SecAggShare>?>?, _ n: Int,
                               _ field: String) throws -> [SecAggShare] {
        try items(list, n, field).map { s in
            let raw = try exactBytes(s.values, WireLimits.secAggShareBytes, "\(field).values")
            let values = (0 ..< raw.count / 8).map { i in
                raw[8 * i ..< 8 * i + 8].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            }
            return SecAggShare(owner: s.owner, values: values)
        }
    }

    /// Little-endian uint32 values (the masked vector, unmask index lists).
    private static func uint32s(_ b: ProtobufCBinaryData, _ field: String) throws -> [UInt32] {
        guard b.len % 4 == 0 else { throw WireError.malformedMessage("\(field) is \(b.len) bytes, not a whole number of uint32") }
        guard b.len > 0, let data = b.data else { return [] }
        return [UInt32](unsafeUninitializedCapacity: b.len / 4) { buf, n in
            UnsafeMutableRawBufferPointer(buf).copyMemory(from: UnsafeRawBufferPointer(start: data, count: b.len))
            for i in 0 ..< b.len / 4 { buf[i] = UInt32(littleEndian: buf[i]) }
            n = b.len / 4
        }
    }

    // MARK: Field mapping

    private static func required<T>(_ p: UnsafeMutablePointer<T>?, _ name: String) throws -> UnsafeMutablePointer<T> {
        guard let p else { throw WireError.malformedMessage("\(name) is missing its body") }
        return p
    }

    private static func string(_ p: UnsafeMutablePointer<CChar>?) -> String {
        p.map { String(cString: $0) } ?? ""
    }

    private static func binary(_ b: ProtobufCBinaryData) -> [UInt8] {
        guard b.len > 0, let data = b.data else { return [] }
        return Array(UnsafeBufferPointer(start: data, count: b.len))
    }

    /// Free text a peer sent for logs, escaped once here (`PeerText.escape`).
    private static func text(_ p: UnsafeMutablePointer<CChar>?) -> String {
        PeerText.escape(string(p))
    }

    private static func roundNumber(_ v: UInt64, _ field: String) throws -> Int {
        guard v <= UInt64(WireLimits.maxRound) else {
            throw WireError.limitExceeded("\(field) = \(v) exceeds \(WireLimits.maxRound)")
        }
        return Int(v)
    }

    /// A FitRes carrying a compressed update: the update's structure is checked here (it
    /// declares an encoding, carries no float32 parameters, at most `maxTensors` tensors, counts
    /// that fit a frame); counts, lengths and scales against the model's shapes are checked by
    /// `UpdateCodec.decompress` before anything is decoded.
    private static func compressedFitRes(_ x: Flwr__FitRes, _ encoding: UpdateCompression) throws -> ClientMessage {
        guard encoding != .none else {
            throw WireError.malformedMessage("FitRes carries \(x.n_update) compressed tensors but update_encoding NONE")
        }
        if let p = x.parameters, p.pointee.n_tensors > 0 {
            throw WireError.malformedMessage("FitRes carries both float32 parameters and a compressed update; send one")
        }
        guard x.n_update <= WireLimits.maxTensors else {
            throw WireError.limitExceeded("FitRes.update has \(x.n_update) tensors; at most \(WireLimits.maxTensors)")
        }
        var tensors: [CompressedTensor] = []
        tensors.reserveCapacity(x.n_update)
        for i in 0 ..< x.n_update {
            let t = try required(x.update[i], "FitRes.update[\(i)]").pointee
            guard t.count <= UInt64(FrameHeader.maxLength) else {
                throw WireError.limitExceeded("FitRes.update[\(i)].count = \(t.count) exceeds what a frame can carry (\(FrameHeader.maxLength))")
            }
            // A double scale that overflows float32 becomes infinite here and is refused by the codec.
            tensors.append(CompressedTensor(count: Int(t.count), scale: Float(t.scale), data: binary(t.data)))
        }
        let res = FitRes(status: try status(x.status), round: try roundNumber(x.round, "FitRes.round"), parameters: Parameters(),
                         numExamples: try count(x.num_examples, "FitRes.num_examples"),
                         metrics: try map(x.metrics, x.n_metrics, key: \.key, value: \.value))
        return .compressedFitRes(res, update: CompressedUpdate(encoding: encoding, tensors: tensors))
    }

    private static func count(_ v: Int64, _ field: String) throws -> Int {
        guard v >= 0 else { throw WireError.limitExceeded("\(field) = \(v) is negative") }
        guard v <= Int64(WireLimits.maxNumExamples) else {
            throw WireError.limitExceeded("\(field) = \(v) exceeds 2^53 (\(WireLimits.maxNumExamples)), the largest count a double weight holds exactly")
        }
        return Int(v)
    }

    private static func status(_ p: UnsafeMutablePointer<Flwr__Status>?) throws -> Status {
        guard let s = p?.pointee else { return .ok }
        let code: Status.Code
        switch s.code {
        case FLWR__STATUS__CODE__OK: code = .ok
        case FLWR__STATUS__CODE__FIT_FAILED: code = .fitFailed
        case FLWR__STATUS__CODE__EVALUATE_FAILED: code = .evaluateFailed
        case FLWR__STATUS__CODE__GET_PARAMETERS_FAILED: code = .getParametersFailed
        case FLWR__STATUS__CODE__BAD_INSTRUCTION: code = .badInstruction
        default: throw WireError.malformedMessage("unknown Status.code \(s.code.rawValue)")
        }
        return Status(code: code, message: text(s.message))
    }

    private static func scalar(_ p: UnsafeMutablePointer<Flwr__Scalar>?, key: String) throws -> Scalar {
        guard let s = p?.pointee else { throw WireError.malformedMessage("map entry \(key.debugDescription) has no value") }
        switch s.value_case {
        case FLWR__SCALAR__VALUE_DOUBLE_VALUE: return .double(s.double_value)
        case FLWR__SCALAR__VALUE_INT64_VALUE: return .int(s.int64_value)
        case FLWR__SCALAR__VALUE_BOOL_VALUE: return .bool(s.bool_value != 0)
        case FLWR__SCALAR__VALUE_STRING_VALUE: return .string(string(s.string_value))
        case FLWR__SCALAR__VALUE_BYTES_VALUE: return .bytes(binary(s.bytes_value))
        default: throw WireError.malformedMessage("map entry \(key.debugDescription) holds a Scalar with no value set")
        }
    }

    private static func map<E>(_ entries: UnsafeMutablePointer<UnsafeMutablePointer<E>?>?, _ n: Int,
                               key: KeyPath<E, UnsafeMutablePointer<CChar>?>,
                               value: KeyPath<E, UnsafeMutablePointer<Flwr__Scalar>?>) throws -> [String: Scalar] {
        guard n > 0, let entries else { return [:] }
        var out: [String: Scalar] = [:]
        out.reserveCapacity(n)
        for i in 0 ..< n {
            guard let e = entries[i]?.pointee else { throw WireError.malformedMessage("map entry \(i) is missing") }
            let k = string(e[keyPath: key])
            out[k] = try scalar(e[keyPath: value], key: k)  // proto3 maps: the last duplicate key wins
        }
        return out
    }

    /// Validates every tensor, then copies all data once, from the received payload into one flat
    /// buffer. `allowFP16` (FitIns and EvaluateIns only) also accepts binary16 tensors, converted
    /// to float32; a non-finite half is refused.
    static func parameters(_ p: UnsafeMutablePointer<Flwr__Parameters>?, _ data: TensorData, allowFP16: Bool = false) throws -> Parameters {
        guard let params = p?.pointee, params.n_tensors > 0 else { return Parameters() }
        guard let tensors = params.tensors else { throw WireError.malformedMessage("Parameters.tensors is missing") }
        var shapes: [(name: String, shape: [Int])] = []
        shapes.reserveCapacity(params.n_tensors)
        var sources: [UnsafeRawBufferPointer] = []
        sources.reserveCapacity(params.n_tensors)
        var halves: [Bool] = []
        halves.reserveCapacity(params.n_tensors)
        var total = 0
        for i in 0 ..< params.n_tensors {
            guard let t = tensors[i]?.pointee else { throw WireError.malformedMessage("tensor \(i) is missing") }
            let name = string(t.name)
            let half = t.dtype == FLWR__DTYPE__DTYPE_FLOAT16
            guard t.dtype == FLWR__DTYPE__DTYPE_FLOAT32 || (half && allowFP16) else {
                throw WireError.badParameters(half ? "tensor \(name.debugDescription) is FLOAT16, which only FitIns and EvaluateIns parameters may be"
                                                   : "tensor \(name.debugDescription) has dtype \(t.dtype.rawValue); only FLOAT32 (0) and FLOAT16 (1) exist")
            }
            let source = try data.bytes(of: t.data, tensor: name)
            let dims = UnsafeBufferPointer(start: t.shape, count: t.shape == nil ? 0 : t.n_shape)
            var shape: [Int] = []
            shape.reserveCapacity(dims.count)
            var elements = 1
            for d in dims {
                guard d >= 0 else { throw WireError.badParameters("tensor \(name.debugDescription) has negative dimension \(d)") }
                let (product, overflow) = elements.multipliedReportingOverflow(by: Int(d))
                guard !overflow else { throw WireError.badParameters("tensor \(name.debugDescription) shape \(Array(dims)) overflows") }
                elements = product
                shape.append(Int(d))
            }
            let width = half ? 2 : MemoryLayout<Float>.size
            let (bytes, overflow) = elements.multipliedReportingOverflow(by: width)
            guard !overflow, bytes == source.count else {
                throw WireError.badParameters("tensor \(name.debugDescription) of shape \(shape) needs \(elements) \(half ? "float16" : "float32") (\(elements &* width) bytes) but carries \(source.count) bytes")
            }
            if half {
                for j in 0 ..< elements {
                    let bits = UInt16(source[2 * j]) | UInt16(source[2 * j + 1]) << 8
                    guard Float16(bitPattern: bits).isFinite else {
                        throw WireError.badParameters("tensor \(name.debugDescription): float16 element \(j) is not finite (0x\(String(bits, radix: 16)))")
                    }
                }
            }
            total += elements  // bounded by the payload size: each element came as 2 or 4 bytes
            shapes.append((name, shape))
            sources.append(source)
            halves.append(half)
        }
        let values = [Float](unsafeUninitializedCapacity: total) { buf, initialized in
            guard let dst = buf.baseAddress.map(UnsafeMutableRawPointer.init) else { initialized = 0; return }
            var offset = 0
            for (src, half) in zip(sources, halves) where src.count > 0 {
                guard let base = src.baseAddress else { continue }
                if half {
                    let out = (dst + offset).assumingMemoryBound(to: Float.self)
                    for j in 0 ..< src.count / 2 {
                        out[j] = Float(Float16(bitPattern: UInt16(src[2 * j]) | UInt16(src[2 * j + 1]) << 8))
                    }
                    offset += src.count * 2
                } else {
                    memcpy(dst + offset, base, src.count)  // the one copy of the tensor bytes on this side
                    offset += src.count
                }
            }
            initialized = total
        }
        do {
            return try Parameters(shapes: shapes, values: values)
        } catch let error as ParametersError {
            throw WireError.badParameters(error.description)
        }
    }
}

/// A libprotobuf-c allocator that refuses to allocate past `WireLimits.decodeBudget` for one
/// message (counting 16 bytes of malloc overhead per block, and never crediting frees: the total
/// bounds the peak). `unpack` then fails cleanly (libprotobuf-c 1.4 frees what it had).
struct DecodeBudget {
    var remaining: Int
    let budget: Int
    var allocated = 0
    var exceeded = false
    /// Where blocks really come from (a test's counting allocator), or nil for malloc/free.
    let inner: UnsafeMutablePointer<ProtobufCAllocator>?

    /// Runs `body` with a budgeted allocator for a payload of `payloadBytes` bytes.
    /// Runs `body` with an allocator that refuses past `budget` bytes.
    static func with<R>(budget: Int, inner: UnsafeMutablePointer<ProtobufCAllocator>?,
                        _ body: (UnsafeMutablePointer<ProtobufCAllocator>, UnsafeMutablePointer<DecodeBudget>) throws -> R) throws -> R {
        var state = DecodeBudget(remaining: budget, budget: budget, inner: inner)
        return try withUnsafeMutablePointer(to: &state) { statePointer in
            var allocator = ProtobufCAllocator(
                alloc: { data, size in
                    guard let state = data?.assumingMemoryBound(to: DecodeBudget.self) else { return nil }
                    let cost = size &+ PayloadLimits.blockOverhead
                    guard size <= Int.max / 2, cost <= state.pointee.remaining else {
                        state.pointee.exceeded = true
                        return nil
                    }
                    state.pointee.remaining -= cost
                    state.pointee.allocated += cost
                    if let inner = state.pointee.inner { return inner.pointee.alloc(inner.pointee.allocator_data, size) }
                    return malloc(size)
                },
                free: { data, pointer in
                    if let inner = data?.assumingMemoryBound(to: DecodeBudget.self).pointee.inner {
                        inner.pointee.free(inner.pointee.allocator_data, pointer)
                    } else {
                        free(pointer)
                    }
                },
                allocator_data: UnsafeMutableRawPointer(statePointer))
            return try withUnsafeMutablePointer(to: &allocator) { try body($0, statePointer) }
        }
    }

    /// The error for a failed `unpack` of `bytes` bytes: over the budget, or not protobuf.
    func failure(_ bytes: Int, _ name: String) -> WireError {
        if exceeded {
            return .limitExceeded("decoding this \(bytes)-byte \(name) ran out of its decoder memory budget; \(PayloadLimits.budgetRule(budget))")
        }
        return .malformedMessage("\(bytes) bytes do not parse as a \(name)")
    }
}

/// The received payload and the tensor data ranges `TensorScanner` found in it.
struct TensorData {
    let payload: UnsafeRawBufferPointer
    let ranges: [TensorBytes]

    /// The payload bytes a tensor's token stands for (empty when it carried no data).
    func bytes(of field: ProtobufCBinaryData, tensor name: String) throws -> UnsafeRawBufferPointer {
        if field.len == 0 { return UnsafeRawBufferPointer(start: nil, count: 0) }
        guard field.len == TensorScanner.tokenSize, let token = field.data else {
            throw WireError.malformedMessage("tensor \(name.debugDescription) carries \(field.len) bytes that TensorScanner did not index (a FlowerWire bug: please report it)")
        }
        let index = Int(UnsafeRawPointer(token).loadUnaligned(as: UInt32.self).littleEndian)
        guard index < ranges.count else {
            throw WireError.malformedMessage("tensor \(name.debugDescription) refers to data range \(index) of \(ranges.count) (a FlowerWire bug: please report it)")
        }
        let r = ranges[index]
        return UnsafeRawBufferPointer(rebasing: payload[Int(r.offset) ..< Int(r.offset) + Int(r.count)])
    }
}

extension RefusalReason {
    init(_ proto: Flwr__Refusal__Reason) {
        switch proto {
        case FLWR__REFUSAL__REASON__VERSION_MISMATCH: self = .versionMismatch
        case FLWR__REFUSAL__REASON__BAD_CREDENTIALS: self = .badCredentials
        case FLWR__REFUSAL__REASON__DUPLICATE_IDENTITY: self = .duplicateIdentity
        case FLWR__REFUSAL__REASON__SERVER_FULL: self = .serverFull
        case FLWR__REFUSAL__REASON__PROTOCOL_ERROR: self = .protocolError
        default: self = .unspecified
        }
    }
}
