// Flower's messages through libprotobuf-c: every kind round-trips, bytes Python's protobuf would
// write decode, and hostile bytes give a failure with a reason instead of a crash.
import FlowerCompat
import FlowerCore
import Testing

@Suite struct CompatCodecTests {
    static let tensors = FlowerTensors(tensors: [[1, 2, 3], [], [0x93, 0x4E]])
    static let config: Config = ["lr": .double(0.05), "epochs": .int(2), "tag": .string("x"), "on": .bool(true), "b": .bytes([9, 8]),
                                 "big": .int(Int64.max), "small": .int(Int64.min)]

    @Test(arguments: [
        FlowerServerMessage.reconnect(seconds: 0), .reconnect(seconds: 5), .getProperties(config: config),
        .getParameters(config: [:]), .fit(parameters: tensors, config: config), .evaluate(parameters: FlowerTensors(), config: config),
    ])
    func serverMessagesRoundTrip(_ message: FlowerServerMessage) throws {
        let bytes = try CompatCodec.encode(message)
        let back = bytes.withUnsafeBytes { CompatCodec.decodeServerMessage($0) }
        #expect(back == .success(message))
    }

    @Test(arguments: [
        FlowerClientMessage.disconnect(reason: FlowerReason.reconnect), .getPropertiesRes(status: .ok, properties: config),
        .getParametersRes(status: FlowerStatus(code: 2, message: "no model"), parameters: FlowerTensors()),
        .fitRes(status: .ok, parameters: tensors, numExamples: 1234, metrics: config),
        .evaluateRes(status: .ok, loss: 0.75, numExamples: Int64.max, metrics: ["accuracy": .double(0.5)]),
    ])
    func clientMessagesRoundTrip(_ message: FlowerClientMessage) throws {
        let bytes = try CompatCodec.encode(message)
        let back = bytes.withUnsafeBytes { CompatCodec.decodeClientMessage($0) }
        #expect(back == .success(message))
    }

    /// `ClientMessage(fit_res=FitRes(parameters=Parameters(tensors=[b"ab"], tensor_type="numpy.ndarray"),
    /// num_examples=7)).SerializeToString()` in Python's protobuf.
    @Test func decodesWhatPythonProtobufWrites() {
        let python: [UInt8] = [0x22, 0x17, 0x12, 0x13, 0x0A, 0x02, 0x61, 0x62, 0x12, 0x0D] + Array("numpy.ndarray".utf8) + [0x18, 0x07]
        let decoded = python.withUnsafeBytes { CompatCodec.decodeClientMessage($0) }
        #expect(decoded == .success(.fitRes(status: .ok, parameters: FlowerTensors(tensors: [[0x61, 0x62]]), numExamples: 7, metrics: [:])))
    }

    @Test func anEmptyMessageIsRefused() {
        let decoded = [UInt8]().withUnsafeBytes { CompatCodec.decodeClientMessage($0) }
        guard case .failure(let e) = decoded else { Issue.record("accepted"); return }
        #expect(e.description.contains("none of its oneof fields set"))
    }

    @Test func garbageIsRefusedNotCrashed() {
        var g = SplitMix64(seed: 11)
        var refused = 0
        for n in [1, 2, 3, 7, 64, 1000] {
            for _ in 0 ..< 200 {
                let junk = (0 ..< n).map { _ in UInt8(truncatingIfNeeded: g.next()) }
                if case .failure = junk.withUnsafeBytes({ CompatCodec.decodeClientMessage($0) }) { refused += 1 }
                _ = junk.withUnsafeBytes { CompatCodec.decodeServerMessage($0) }
            }
        }
        #expect(refused > 1000, "random bytes are almost never a valid ClientMessage")
    }

    @Test func everyTruncationOfAValidMessageDecodesOrFails() throws {
        let full = try CompatCodec.encode(FlowerClientMessage.fitRes(status: .ok, parameters: Self.tensors, numExamples: 5, metrics: Self.config))
        for cut in 0 ..< full.count {
            _ = Array(full.prefix(cut)).withUnsafeBytes { CompatCodec.decodeClientMessage($0) }
        }
    }

    /// 100,000 empty metrics entries: 200 KB on the wire that libprotobuf-c would turn into
    /// megabytes of structs; refused by the field count before it unpacks anything.
    @Test func aFloodOfTinyFieldsIsRefusedBeforeUnpacking() {
        var fit: [UInt8] = []
        for _ in 0 ..< 100_000 { fit += [0x22, 0x00] }
        var message: [UInt8] = [0x22]
        var n = fit.count
        while n >= 0x80 { message.append(UInt8(n & 0x7F) | 0x80); n >>= 7 }
        message.append(UInt8(n))
        message += fit
        guard case .failure(let e) = message.withUnsafeBytes({ CompatCodec.decodeClientMessage($0) }) else {
            Issue.record("accepted"); return
        }
        #expect(e.description.contains("protobuf fields"), "\(e)")
    }

    /// The count is exact: a FitRes of `maxFields - 1` empty metrics entries (with the fit_res
    /// field itself, `maxFields` fields) passes the walk and is refused later for its map entries;
    /// one more entry is refused by the walk.
    @Test func theFieldCountStopsExactlyAtTheLimit() {
        func message(entries: Int) -> [UInt8] {
            var fit: [UInt8] = []
            for _ in 0 ..< entries { fit += [0x22, 0x00] }
            var message: [UInt8] = [0x22]
            var n = fit.count
            while n >= 0x80 { message.append(UInt8(n & 0x7F) | 0x80); n >>= 7 }
            message.append(UInt8(n))
            return message + fit
        }
        let limit = CompatLimits.maxTensors + 4 * CompatLimits.maxMapEntries + 1_024
        guard case .failure(let within) = message(entries: limit - 1).withUnsafeBytes({ CompatCodec.decodeClientMessage($0) }),
              case .failure(let over) = message(entries: limit).withUnsafeBytes({ CompatCodec.decodeClientMessage($0) }) else {
            Issue.record("accepted"); return
        }
        #expect(!within.description.contains("protobuf fields") && within.description.contains("4096"), "\(within)")
        #expect(over.description.contains("more than \(limit) protobuf fields"), "\(over)")
    }

    @Test func moreMapEntriesThanTheLimitAreRefused() throws {
        var metrics: Metrics = [:]
        for i in 0 ... CompatLimits.maxMapEntries { metrics["m\(i)"] = .int(Int64(i)) }
        let bytes = try CompatCodec.encode(FlowerClientMessage.evaluateRes(status: .ok, loss: 1, numExamples: 1, metrics: metrics))
        guard case .failure(let e) = bytes.withUnsafeBytes({ CompatCodec.decodeClientMessage($0) }) else { Issue.record("accepted"); return }
        #expect(e.description.contains("exceeds the limit of 4096"), "\(e)")
    }

    @Test func parametersConvertWithTheReferenceNames() throws {
        let reference = try Parameters(shapes: [("conv.weight", [2, 1]), ("conv.bias", [2])], values: [1, 2, 3, 4])
        let t = ParameterConversion.tensors(reference)
        #expect(t.tensors.count == 2)
        #expect(try ParameterConversion.parameters(t, like: reference) == reference)
        let unnamed = try ParameterConversion.parameters(t, like: nil)
        #expect(unnamed.layout.map(\.name) == ["param_0", "param_1"])
        #expect(unnamed.values == reference.values)
        #expect(throws: CompatError.self) { try ParameterConversion.parameters(FlowerTensors(tensors: [t.tensors[0]]), like: reference) }
        #expect(throws: CompatError.self) { try ParameterConversion.parameters(FlowerTensors(tensors: t.tensors.reversed()), like: reference) }
        #expect(throws: CompatError.self) { try ParameterConversion.parameters(FlowerTensors(tensors: t.tensors, tensorType: "torch.Tensor"), like: reference) }
    }
}
