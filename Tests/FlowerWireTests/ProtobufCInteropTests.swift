import CFlowerProto
import Foundation
import XCTest

/// Allocation counters for the counting allocator below (single-threaded test use).
nonisolated(unsafe) private var liveAllocations = 0
nonisolated(unsafe) private var totalAllocations = 0

/// A ProtobufCAllocator that counts live blocks, so a test can prove unpack memory is all freed.
private func countingAllocator() -> ProtobufCAllocator {
    ProtobufCAllocator(
        alloc: { _, size in
            liveAllocations += 1
            totalAllocations += 1
            return malloc(size)
        },
        free: { _, pointer in
            if pointer != nil { liveAllocations -= 1 }
            free(pointer)
        },
        allocator_data: nil)
}

/// libprotobuf-c used for real from Swift: a ServerMessage (oneof) holding a FitIns with
/// repeated tensors and a map of config scalars is packed, unpacked and compared field by field.
final class ProtobufCInteropTests: XCTestCase {
    let weights: [Float] = (0 ..< 1_000).map { Float($0) * 0.5 - 7 }
    let bias: [Float] = [1.5, -2.25, 3]

    /// Packs ServerMessage{fit_ins: FitIns{round 7, [conv.weight 10x100, conv.bias 3],
    /// config {lr: 0.01, epochs: 2, tag: "fedavg", shuffle: true}}}. All C memory is Swift's own
    /// and released here (never free_unpacked on a message built in Swift).
    func packFitIns() -> [UInt8] {
        var shapeW: [Int64] = [10, 100]
        var shapeB: [Int64] = [3]
        var w = weights, b = bias
        let nameW = strdup("conv.weight")!, nameB = strdup("conv.bias")!
        let keys: [UnsafeMutablePointer<CChar>] = ["lr", "epochs", "tag", "shuffle"].map { (k: String) in strdup(k)! }
        let tagValue = strdup("fedavg")!
        defer { ([nameW, nameB, tagValue] + keys).forEach { free($0) } }

        return shapeW.withUnsafeMutableBufferPointer { sw in
            shapeB.withUnsafeMutableBufferPointer { sb in
                w.withUnsafeMutableBytes { wb in
                    b.withUnsafeMutableBytes { bb in
                        var tw = Flwr__Tensor(); flwr__tensor__init(&tw)
                        tw.name = nameW; tw.n_shape = 2; tw.shape = sw.baseAddress
                        tw.data = ProtobufCBinaryData(len: wb.count, data: wb.baseAddress!.assumingMemoryBound(to: UInt8.self))
                        var tb = Flwr__Tensor(); flwr__tensor__init(&tb)
                        tb.name = nameB; tb.n_shape = 1; tb.shape = sb.baseAddress
                        tb.data = ProtobufCBinaryData(len: bb.count, data: bb.baseAddress!.assumingMemoryBound(to: UInt8.self))

                        var scalars = (0 ..< 4).map { _ -> Flwr__Scalar in var s = Flwr__Scalar(); flwr__scalar__init(&s); return s }
                        scalars[0].value_case = FLWR__SCALAR__VALUE_DOUBLE_VALUE; scalars[0].double_value = 0.01
                        scalars[1].value_case = FLWR__SCALAR__VALUE_INT64_VALUE; scalars[1].int64_value = 2
                        scalars[2].value_case = FLWR__SCALAR__VALUE_STRING_VALUE; scalars[2].string_value = tagValue
                        scalars[3].value_case = FLWR__SCALAR__VALUE_BOOL_VALUE; scalars[3].bool_value = 1

                        return withUnsafeMutablePointer(to: &tw) { ptw in
                            withUnsafeMutablePointer(to: &tb) { ptb in
                                scalars.withUnsafeMutableBufferPointer { sc in
                                    var entries = (0 ..< 4).map { i -> Flwr__FitIns__ConfigEntry in
                                        var e = Flwr__FitIns__ConfigEntry(); flwr__fit_ins__config_entry__init(&e)
                                        e.key = keys[i]; e.value = sc.baseAddress! + i
                                        return e
                                    }
                                    return entries.withUnsafeMutableBufferPointer { eb in
                                        var entryPtrs: [UnsafeMutablePointer<Flwr__FitIns__ConfigEntry>?] = (0 ..< 4).map { eb.baseAddress! + $0 }
                                        var tensorPtrs: [UnsafeMutablePointer<Flwr__Tensor>?] = [ptw, ptb]
                                        return entryPtrs.withUnsafeMutableBufferPointer { ep in
                                            tensorPtrs.withUnsafeMutableBufferPointer { tp in
                                                var params = Flwr__Parameters(); flwr__parameters__init(&params)
                                                params.n_tensors = 2; params.tensors = tp.baseAddress
                                                return withUnsafeMutablePointer(to: &params) { pp in
                                                    var fit = Flwr__FitIns(); flwr__fit_ins__init(&fit)
                                                    fit.round = 7; fit.parameters = pp
                                                    fit.n_config = 4; fit.config = ep.baseAddress
                                                    return withUnsafeMutablePointer(to: &fit) { pf in
                                                        var msg = Flwr__ServerMessage(); flwr__server_message__init(&msg)
                                                        msg.msg_case = FLWR__SERVER_MESSAGE__MSG_FIT_INS
                                                        msg.fit_ins = pf
                                                        let size = flwr__server_message__get_packed_size(&msg)
                                                        var out = [UInt8](repeating: 0, count: size)
                                                        let written = out.withUnsafeMutableBufferPointer {
                                                            flwr__server_message__pack(&msg, $0.baseAddress)
                                                        }
                                                        XCTAssertEqual(written, size)
                                                        return out
                                                    }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    func testFitInsPackUnpackFieldsMatch() throws {
        let packed = packFitIns()
        // 4000 + 12 bytes of floats plus names, shapes, config and tags.
        XCTAssertGreaterThan(packed.count, 4_012)

        var allocator = countingAllocator()
        let msg = packed.withUnsafeBufferPointer {
            flwr__server_message__unpack(&allocator, $0.count, $0.baseAddress)
        }
        let m = try XCTUnwrap(msg, "unpack of a freshly packed message failed")
        defer { flwr__server_message__free_unpacked(m, &allocator) }

        XCTAssertEqual(m.pointee.msg_case, FLWR__SERVER_MESSAGE__MSG_FIT_INS)
        let fit = try XCTUnwrap(m.pointee.fit_ins).pointee
        XCTAssertEqual(fit.round, 7)
        let params = try XCTUnwrap(fit.parameters).pointee
        XCTAssertEqual(params.n_tensors, 2)

        func tensor(_ i: Int) throws -> (String, [Int64], [Float]) {
            let t = try XCTUnwrap(params.tensors[i]).pointee
            let shape = Array(UnsafeBufferPointer(start: t.shape, count: t.n_shape))
            XCTAssertEqual(t.data.len % 4, 0)
            let floats = [Float](unsafeUninitializedCapacity: t.data.len / 4) { buf, n in
                memcpy(buf.baseAddress!, t.data.data, t.data.len)
                n = t.data.len / 4
            }
            return (String(cString: t.name), shape, floats)
        }
        let (n0, s0, v0) = try tensor(0)
        XCTAssertEqual(n0, "conv.weight"); XCTAssertEqual(s0, [10, 100]); XCTAssertEqual(v0, weights)
        let (n1, s1, v1) = try tensor(1)
        XCTAssertEqual(n1, "conv.bias"); XCTAssertEqual(s1, [3]); XCTAssertEqual(v1, bias)

        var config: [String: String] = [:]
        for i in 0 ..< fit.n_config {
            let e = try XCTUnwrap(fit.config[i]).pointee
            let v = try XCTUnwrap(e.value).pointee
            let key = String(cString: e.key)
            switch v.value_case {
            case FLWR__SCALAR__VALUE_DOUBLE_VALUE: config[key] = "d:\(v.double_value)"
            case FLWR__SCALAR__VALUE_INT64_VALUE: config[key] = "i:\(v.int64_value)"
            case FLWR__SCALAR__VALUE_STRING_VALUE: config[key] = "s:\(String(cString: v.string_value))"
            case FLWR__SCALAR__VALUE_BOOL_VALUE: config[key] = "b:\(v.bool_value)"
            default: XCTFail("unexpected scalar case \(v.value_case) for \(key)")
            }
        }
        XCTAssertEqual(config, ["lr": "d:0.01", "epochs": "i:2", "tag": "s:fedavg", "shuffle": "b:1"])
    }

    /// Every block unpack allocates is released by free_unpacked, over many runs.
    func testUnpackedMemoryIsFreed() throws {
        let packed = packFitIns()
        liveAllocations = 0
        totalAllocations = 0
        var allocator = countingAllocator()
        for _ in 0 ..< 500 {
            let msg = packed.withUnsafeBufferPointer {
                flwr__server_message__unpack(&allocator, $0.count, $0.baseAddress)
            }
            let m = try XCTUnwrap(msg)
            XCTAssertGreaterThan(liveAllocations, 0)
            flwr__server_message__free_unpacked(m, &allocator)
            XCTAssertEqual(liveAllocations, 0, "blocks still live after free_unpacked")
        }
        XCTAssertGreaterThanOrEqual(totalAllocations, 500 * 10, "unpack should allocate per field")
    }

    /// Bytes that are not a ServerMessage fail to unpack (NULL), allocating nothing that lingers.
    func testGarbageFailsToUnpackWithoutLeaking() {
        liveAllocations = 0
        var allocator = countingAllocator()
        var packed = packFitIns()
        packed.removeLast(100)  // truncated inside the tensor bytes
        let msg = packed.withUnsafeBufferPointer {
            flwr__server_message__unpack(&allocator, $0.count, $0.baseAddress)
        }
        XCTAssertNil(msg)
        XCTAssertEqual(liveAllocations, 0)
    }
}
