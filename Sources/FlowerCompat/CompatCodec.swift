// Flower's legacy messages ↔ protobuf bytes, through the code protoc-c generated from Flower's own
// transport.proto (CFlowerCompatProto) and libprotobuf-c — the one protobuf library of the binary.
//
// Encoding builds the C message tree in an arena freed when encoding ends. Decoding unpacks with
// libprotobuf-c, copies what it needs into Swift values, frees the C tree, and checks the limits
// (tensors, map entries) before anything is used. A decode never throws on bad input: it returns
// `.failure` with a message saying what was wrong, so the transport can log it and end the stream.
import CFlowerCompatProto
import FlowerCore
import FlowerWireCodec
#if canImport(Glibc)
import Glibc
#endif

/// Bounds on what a peer may put in one message.
public enum CompatLimits {
    /// Tensors in one `Parameters`: the wire's bound (`WireLimits`, one set of peer limits).
    public static let maxTensors = WireLimits.maxTensors
    /// Entries in one config/metrics/properties map: the wire's bound.
    public static let maxMapEntries = WireLimits.maxMapEntries
    /// Flower's default gRPC message limit (`GRPC_MAX_MESSAGE_LENGTH`, 512 MiB): ours by default.
    public static let defaultMaxMessageBytes = 536_870_912
    /// Concurrent Join streams one HTTP/2 connection may open (HTTP/2's SETTINGS_MAX_CONCURRENT_STREAMS,
    /// unlimited in grpc-swift's defaults). A Flower client opens one; without the bound one peer
    /// could register any number of clients over a single connection.
    public static let maxStreamsPerConnection = 4
    /// A connection with no open stream for this long is closed (a Flower client keeps its Join
    /// stream open for the whole federation, so only abandoned connections are idle).
    public static let maxIdleTime = Duration.seconds(300)
}

/// Owns the C blocks of one message under construction; frees them all at deinit.
final class CompatArena {
    private var blocks: [UnsafeMutableRawPointer] = []

    deinit { for block in blocks { free(block) } }

    func make<T>(_ type: T.Type, count: Int = 1) throws(CompatError) -> UnsafeMutablePointer<T> {
        guard let raw = calloc(max(count, 1), MemoryLayout<T>.stride) else {
            throw .cannotEncode("out of memory building a \(T.self) message")
        }
        blocks.append(raw)
        return raw.bindMemory(to: T.self, capacity: max(count, 1))
    }

    /// A NUL-terminated copy of `s`; NUL inside it (which C strings cannot carry) becomes U+FFFD.
    func cString(_ s: String) throws(CompatError) -> UnsafeMutablePointer<CChar> {
        let utf8 = Array(s.replacingNUL().utf8)
        let p = try make(CChar.self, count: utf8.count + 1)
        for (i, byte) in utf8.enumerated() { p[i] = CChar(bitPattern: byte) }
        return p
    }

    func binary(_ bytes: [UInt8]) throws(CompatError) -> ProtobufCBinaryData {
        guard !bytes.isEmpty else { return ProtobufCBinaryData(len: 0, data: nil) }
        let p = try make(UInt8.self, count: bytes.count)
        p.initialize(from: bytes, count: bytes.count)
        return ProtobufCBinaryData(len: bytes.count, data: p)
    }

    func scalar(_ value: Scalar) throws(CompatError) -> UnsafeMutablePointer<Flwr__Proto__Scalar> {
        let s = try make(Flwr__Proto__Scalar.self)
        flwr__proto__scalar__init(s)
        switch value {
        case .double(let d): s.pointee.scalar_case = FLWR__PROTO__SCALAR__SCALAR_DOUBLE; s.pointee.double_ = d
        case .int(let i): s.pointee.scalar_case = FLWR__PROTO__SCALAR__SCALAR_SINT64; s.pointee.sint64 = i
        case .bool(let b): s.pointee.scalar_case = FLWR__PROTO__SCALAR__SCALAR_BOOL; s.pointee.bool_ = b ? 1 : 0
        case .string(let str): s.pointee.scalar_case = FLWR__PROTO__SCALAR__SCALAR_STRING; s.pointee.string = try cString(str)
        case .bytes(let b): s.pointee.scalar_case = FLWR__PROTO__SCALAR__SCALAR_BYTES; s.pointee.bytes = try binary(b)
        }
        return s
    }

    /// A protobuf map (repeated entries), keys sorted so the bytes are deterministic.
    func map<E>(_ dict: [String: Scalar], initEntry: (UnsafeMutablePointer<E>) -> Void,
                key: WritableKeyPath<E, UnsafeMutablePointer<CChar>?>,
                value: WritableKeyPath<E, UnsafeMutablePointer<Flwr__Proto__Scalar>?>) throws(CompatError)
        -> (count: Int, entries: UnsafeMutablePointer<UnsafeMutablePointer<E>?>?) {
        guard !dict.isEmpty else { return (0, nil) }
        let entries = try make(E.self, count: dict.count)
        let pointers = try make(UnsafeMutablePointer<E>?.self, count: dict.count)
        for (i, k) in dict.keys.sorted().enumerated() {
            let e = entries + i
            initEntry(e)
            e.pointee[keyPath: key] = try cString(k)
            e.pointee[keyPath: value] = try scalar(dict[k] ?? .int(0))
            pointers[i] = e
        }
        return (dict.count, pointers)
    }

    func parameters(_ p: FlowerTensors) throws(CompatError) -> UnsafeMutablePointer<Flwr__Proto__Parameters> {
        let out = try make(Flwr__Proto__Parameters.self)
        flwr__proto__parameters__init(out)
        out.pointee.tensor_type = try cString(p.tensorType)
        guard !p.tensors.isEmpty else { return out }
        let blobs = try make(ProtobufCBinaryData.self, count: p.tensors.count)
        for (i, t) in p.tensors.enumerated() { blobs[i] = try binary(t) }
        out.pointee.n_tensors = p.tensors.count
        out.pointee.tensors = blobs
        return out
    }

    func status(_ st: FlowerStatus) throws(CompatError) -> UnsafeMutablePointer<Flwr__Proto__Status> {
        let s = try make(Flwr__Proto__Status.self)
        flwr__proto__status__init(s)
        s.pointee.code = Flwr__Proto__Code(rawValue: UInt32(bitPattern: st.code))
        s.pointee.message = try cString(st.message)
        return s
    }
}

extension String {
    /// The string with NUL replaced by U+FFFD (protobuf-c strings end at NUL).
    func replacingNUL() -> String {
        contains("\0") ? String(unicodeScalars.map { $0 == "\0" ? "\u{FFFD}" : Character($0) }) : self
    }
}

/// Packs and unpacks Flower's `ServerMessage` and `ClientMessage`.
public enum CompatCodec {
    // MARK: Encoding

    /// The protobuf bytes of a ServerMessage.
    public static func encode(_ message: FlowerServerMessage) throws(CompatError) -> [UInt8] {
        let arena = CompatArena()
        let m = try arena.make(Flwr__Proto__ServerMessage.self)
        flwr__proto__server_message__init(m)
        switch message {
        case .reconnect(let seconds):
            let r = try arena.make(Flwr__Proto__ServerMessage__ReconnectIns.self)
            flwr__proto__server_message__reconnect_ins__init(r)
            r.pointee.seconds = seconds
            m.pointee.msg_case = FLWR__PROTO__SERVER_MESSAGE__MSG_RECONNECT_INS
            m.pointee.reconnect_ins = r
        case .getProperties(let config):
            let g = try arena.make(Flwr__Proto__ServerMessage__GetPropertiesIns.self)
            flwr__proto__server_message__get_properties_ins__init(g)
            (g.pointee.n_config, g.pointee.config) = try arena.map(config, initEntry: { flwr__proto__server_message__get_properties_ins__config_entry__init($0) }, key: \.key, value: \.value)
            m.pointee.msg_case = FLWR__PROTO__SERVER_MESSAGE__MSG_GET_PROPERTIES_INS
            m.pointee.get_properties_ins = g
        case .getParameters(let config):
            let g = try arena.make(Flwr__Proto__ServerMessage__GetParametersIns.self)
            flwr__proto__server_message__get_parameters_ins__init(g)
            (g.pointee.n_config, g.pointee.config) = try arena.map(config, initEntry: { flwr__proto__server_message__get_parameters_ins__config_entry__init($0) }, key: \.key, value: \.value)
            m.pointee.msg_case = FLWR__PROTO__SERVER_MESSAGE__MSG_GET_PARAMETERS_INS
            m.pointee.get_parameters_ins = g
        case .fit(let parameters, let config):
            let f = try arena.make(Flwr__Proto__ServerMessage__FitIns.self)
            flwr__proto__server_message__fit_ins__init(f)
            f.pointee.parameters = try arena.parameters(parameters)
            (f.pointee.n_config, f.pointee.config) = try arena.map(config, initEntry: { flwr__proto__server_message__fit_ins__config_entry__init($0) }, key: \.key, value: \.value)
            m.pointee.msg_case = FLWR__PROTO__SERVER_MESSAGE__MSG_FIT_INS
            m.pointee.fit_ins = f
        case .evaluate(let parameters, let config):
            let e = try arena.make(Flwr__Proto__ServerMessage__EvaluateIns.self)
            flwr__proto__server_message__evaluate_ins__init(e)
            e.pointee.parameters = try arena.parameters(parameters)
            (e.pointee.n_config, e.pointee.config) = try arena.map(config, initEntry: { flwr__proto__server_message__evaluate_ins__config_entry__init($0) }, key: \.key, value: \.value)
            m.pointee.msg_case = FLWR__PROTO__SERVER_MESSAGE__MSG_EVALUATE_INS
            m.pointee.evaluate_ins = e
        }
        return withExtendedLifetime(arena) {
            let size = flwr__proto__server_message__get_packed_size(m)
            var out = [UInt8](repeating: 0, count: size)
            out.withUnsafeMutableBufferPointer { _ = flwr__proto__server_message__pack(m, $0.baseAddress) }
            return out
        }
    }

    /// The protobuf bytes of a ClientMessage.
    public static func encode(_ message: FlowerClientMessage) throws(CompatError) -> [UInt8] {
        let arena = CompatArena()
        let m = try arena.make(Flwr__Proto__ClientMessage.self)
        flwr__proto__client_message__init(m)
        switch message {
        case .disconnect(let reason):
            let d = try arena.make(Flwr__Proto__ClientMessage__DisconnectRes.self)
            flwr__proto__client_message__disconnect_res__init(d)
            d.pointee.reason = Flwr__Proto__Reason(rawValue: UInt32(bitPattern: reason))
            m.pointee.msg_case = FLWR__PROTO__CLIENT_MESSAGE__MSG_DISCONNECT_RES
            m.pointee.disconnect_res = d
        case .getPropertiesRes(let status, let properties):
            let g = try arena.make(Flwr__Proto__ClientMessage__GetPropertiesRes.self)
            flwr__proto__client_message__get_properties_res__init(g)
            g.pointee.status = try arena.status(status)
            (g.pointee.n_properties, g.pointee.properties) = try arena.map(properties, initEntry: { flwr__proto__client_message__get_properties_res__properties_entry__init($0) }, key: \.key, value: \.value)
            m.pointee.msg_case = FLWR__PROTO__CLIENT_MESSAGE__MSG_GET_PROPERTIES_RES
            m.pointee.get_properties_res = g
        case .getParametersRes(let status, let parameters):
            let g = try arena.make(Flwr__Proto__ClientMessage__GetParametersRes.self)
            flwr__proto__client_message__get_parameters_res__init(g)
            g.pointee.status = try arena.status(status)
            g.pointee.parameters = try arena.parameters(parameters)
            m.pointee.msg_case = FLWR__PROTO__CLIENT_MESSAGE__MSG_GET_PARAMETERS_RES
            m.pointee.get_parameters_res = g
        case .fitRes(let status, let parameters, let numExamples, let metrics):
            let f = try arena.make(Flwr__Proto__ClientMessage__FitRes.self)
            flwr__proto__client_message__fit_res__init(f)
            f.pointee.status = try arena.status(status)
            f.pointee.parameters = try arena.parameters(parameters)
            f.pointee.num_examples = numExamples
            (f.pointee.n_metrics, f.pointee.metrics) = try arena.map(metrics, initEntry: { flwr__proto__client_message__fit_res__metrics_entry__init($0) }, key: \.key, value: \.value)
            m.pointee.msg_case = FLWR__PROTO__CLIENT_MESSAGE__MSG_FIT_RES
            m.pointee.fit_res = f
        case .evaluateRes(let status, let loss, let numExamples, let metrics):
            let e = try arena.make(Flwr__Proto__ClientMessage__EvaluateRes.self)
            flwr__proto__client_message__evaluate_res__init(e)
            e.pointee.status = try arena.status(status)
            e.pointee.loss = loss
            e.pointee.num_examples = numExamples
            (e.pointee.n_metrics, e.pointee.metrics) = try arena.map(metrics, initEntry: { flwr__proto__client_message__evaluate_res__metrics_entry__init($0) }, key: \.key, value: \.value)
            m.pointee.msg_case = FLWR__PROTO__CLIENT_MESSAGE__MSG_EVALUATE_RES
            m.pointee.evaluate_res = e
        }
        return withExtendedLifetime(arena) {
            let size = flwr__proto__client_message__get_packed_size(m)
            var out = [UInt8](repeating: 0, count: size)
            out.withUnsafeMutableBufferPointer { _ = flwr__proto__client_message__pack(m, $0.baseAddress) }
            return out
        }
    }

    // MARK: Decoding

    /// A ClientMessage from protobuf bytes, or what was wrong with them.
    public static func decodeClientMessage(_ bytes: UnsafeRawBufferPointer) -> Result<FlowerClientMessage, CompatError> {
        if let why = ProtoScan.check(bytes, schema: ProtoScan.clientMessage) { return .failure(.malformedMessage(why)) }
        guard let m = flwr__proto__client_message__unpack(nil, bytes.count, bytes.baseAddress?.assumingMemoryBound(to: UInt8.self)) else {
            return .failure(.malformedMessage("ClientMessage of \(bytes.count) bytes is not valid protobuf for Flower's transport.proto"))
        }
        defer { flwr__proto__client_message__free_unpacked(m, nil) }
        do throws(CompatError) {
            switch m.pointee.msg_case {
            case FLWR__PROTO__CLIENT_MESSAGE__MSG_DISCONNECT_RES:
                return .success(.disconnect(reason: Int32(bitPattern: m.pointee.disconnect_res.pointee.reason.rawValue)))
            case FLWR__PROTO__CLIENT_MESSAGE__MSG_GET_PROPERTIES_RES:
                let g = m.pointee.get_properties_res.pointee
                return .success(.getPropertiesRes(status: status(g.status), properties: try map(g.n_properties, g.properties, key: \.key, value: \.value)))
            case FLWR__PROTO__CLIENT_MESSAGE__MSG_GET_PARAMETERS_RES:
                let g = m.pointee.get_parameters_res.pointee
                return .success(.getParametersRes(status: status(g.status), parameters: try parameters(g.parameters)))
            case FLWR__PROTO__CLIENT_MESSAGE__MSG_FIT_RES:
                let f = m.pointee.fit_res.pointee
                return .success(.fitRes(status: status(f.status), parameters: try parameters(f.parameters),
                                        numExamples: f.num_examples, metrics: try map(f.n_metrics, f.metrics, key: \.key, value: \.value)))
            case FLWR__PROTO__CLIENT_MESSAGE__MSG_EVALUATE_RES:
                let e = m.pointee.evaluate_res.pointee
                return .success(.evaluateRes(status: status(e.status), loss: e.loss, numExamples: e.num_examples,
                                             metrics: try map(e.n_metrics, e.metrics, key: \.key, value: \.value)))
            default:
                return .failure(.malformedMessage("ClientMessage with none of its oneof fields set"))
            }
        } catch {
            return .failure(error)
        }
    }

    /// A ServerMessage from protobuf bytes, or what was wrong with them.
    public static func decodeServerMessage(_ bytes: UnsafeRawBufferPointer) -> Result<FlowerServerMessage, CompatError> {
        if let why = ProtoScan.check(bytes, schema: ProtoScan.serverMessage) { return .failure(.malformedMessage(why)) }
        guard let m = flwr__proto__server_message__unpack(nil, bytes.count, bytes.baseAddress?.assumingMemoryBound(to: UInt8.self)) else {
            return .failure(.malformedMessage("ServerMessage of \(bytes.count) bytes is not valid protobuf for Flower's transport.proto"))
        }
        defer { flwr__proto__server_message__free_unpacked(m, nil) }
        do throws(CompatError) {
            switch m.pointee.msg_case {
            case FLWR__PROTO__SERVER_MESSAGE__MSG_RECONNECT_INS:
                return .success(.reconnect(seconds: m.pointee.reconnect_ins.pointee.seconds))
            case FLWR__PROTO__SERVER_MESSAGE__MSG_GET_PROPERTIES_INS:
                let g = m.pointee.get_properties_ins.pointee
                return .success(.getProperties(config: try map(g.n_config, g.config, key: \.key, value: \.value)))
            case FLWR__PROTO__SERVER_MESSAGE__MSG_GET_PARAMETERS_INS:
                let g = m.pointee.get_parameters_ins.pointee
                return .success(.getParameters(config: try map(g.n_config, g.config, key: \.key, value: \.value)))
            case FLWR__PROTO__SERVER_MESSAGE__MSG_FIT_INS:
                let f = m.pointee.fit_ins.pointee
                return .success(.fit(parameters: try parameters(f.parameters), config: try map(f.n_config, f.config, key: \.key, value: \.value)))
            case FLWR__PROTO__SERVER_MESSAGE__MSG_EVALUATE_INS:
                let e = m.pointee.evaluate_ins.pointee
                return .success(.evaluate(parameters: try parameters(e.parameters), config: try map(e.n_config, e.config, key: \.key, value: \.value)))
            default:
                return .failure(.malformedMessage("ServerMessage with none of its oneof fields set"))
            }
        } catch {
            return .failure(error)
        }
    }

    private static func string(_ p: UnsafeMutablePointer<CChar>?) -> String {
        guard let p else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: p, count: strlen(p)), as: UTF8.self)
    }

    private static func status(_ p: UnsafeMutablePointer<Flwr__Proto__Status>?) -> FlowerStatus {
        guard let s = p?.pointee else { return .ok }
        return FlowerStatus(code: Int32(bitPattern: s.code.rawValue), message: string(s.message))
    }

    private static func parameters(_ p: UnsafeMutablePointer<Flwr__Proto__Parameters>?) throws(CompatError) -> FlowerTensors {
        guard let p = p?.pointee else { return FlowerTensors(tensors: [], tensorType: "") }
        guard p.n_tensors <= CompatLimits.maxTensors else {
            throw .malformedMessage("\(p.n_tensors) tensors exceed the limit of \(CompatLimits.maxTensors)")
        }
        var tensors: [[UInt8]] = []
        tensors.reserveCapacity(p.n_tensors)
        for i in 0 ..< p.n_tensors {
            let b = p.tensors[i]
            tensors.append(b.len == 0 ? [] : Array(UnsafeRawBufferPointer(start: b.data, count: b.len)))
        }
        return FlowerTensors(tensors: tensors, tensorType: string(p.tensor_type))
    }

    private static func scalar(_ p: UnsafeMutablePointer<Flwr__Proto__Scalar>?) throws(CompatError) -> Scalar {
        guard let s = p?.pointee else { throw .malformedMessage("a map entry has no value") }
        switch s.scalar_case {
        case FLWR__PROTO__SCALAR__SCALAR_DOUBLE: return .double(s.double_)
        case FLWR__PROTO__SCALAR__SCALAR_SINT64: return .int(s.sint64)
        case FLWR__PROTO__SCALAR__SCALAR_UINT64:
            // Above Int64.max it cannot be an Int64: carried as the nearest double.
            return s.uint64 <= UInt64(Int64.max) ? .int(Int64(s.uint64)) : .double(Double(s.uint64))
        case FLWR__PROTO__SCALAR__SCALAR_BOOL: return .bool(s.bool_ != 0)
        case FLWR__PROTO__SCALAR__SCALAR_STRING: return .string(string(s.string))
        case FLWR__PROTO__SCALAR__SCALAR_BYTES:
            return .bytes(s.bytes.len == 0 ? [] : Array(UnsafeRawBufferPointer(start: s.bytes.data, count: s.bytes.len)))
        default: throw .malformedMessage("a Scalar with none of its values set")
        }
    }

    private static func map<E>(_ n: Int, _ entries: UnsafeMutablePointer<UnsafeMutablePointer<E>?>?,
                               key: KeyPath<E, UnsafeMutablePointer<CChar>?>,
                               value: KeyPath<E, UnsafeMutablePointer<Flwr__Proto__Scalar>?>) throws(CompatError) -> [String: Scalar] {
        guard n <= CompatLimits.maxMapEntries else {
            throw .malformedMessage("a map of \(n) entries exceeds the limit of \(CompatLimits.maxMapEntries)")
        }
        var out: [String: Scalar] = [:]
        for i in 0 ..< n {
            guard let e = entries?[i]?.pointee else { continue }
            out[string(e[keyPath: key])] = try scalar(e[keyPath: value])
        }
        return out
    }
}
