// numpy's .npy header: the bytes numpy writes (hand-checked against numpy's format spec), both
// header versions, and every refusal hostile or damaged input can provoke.
import NPYFormat
import Testing

private func parse(_ bytes: [UInt8], maxHeaderBytes: Int = 65_536, maxDimensions: Int = 64)
    throws(NPYFormat.ParseError) -> NPYFormat.Header {
    try bytes.withUnsafeBytes { raw in
        Result { () throws(NPYFormat.ParseError) in
            try NPYFormat.parseHeader(raw, maxHeaderBytes: maxHeaderBytes, maxDimensions: maxDimensions)
        }
    }.get()
}

/// A version-1 header around an arbitrary dict text (padded as numpy pads).
private func header(dict: String) -> [UInt8] {
    let total = (10 + dict.utf8.count + 1 + 63) / 64 * 64
    var out = NPYFormat.magic + [1, 0, UInt8((total - 10) & 0xFF), UInt8((total - 10) >> 8)]
    out += Array(dict.utf8)
    out += [UInt8](repeating: 0x20, count: total - out.count - 1) + [0x0A]
    return out
}

private func detail(_ body: () throws(NPYFormat.ParseError) -> NPYFormat.Header) -> String? {
    do { _ = try body(); return nil } catch { return error.detail }
}

@Suite struct NPYFormatTests {
    @Test func headerIsTheBytesNumpyWrites() throws {
        // np.save(f, np.zeros((2, 3), np.float32)) writes this 128-byte header: version 1.0,
        // length 118 = 0x76, the dict, 51 spaces, '\n'.
        let dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"
        let expected = [0x93] + Array("NUMPY".utf8) + [1, 0, 0x76, 0] + Array(dict.utf8)
            + [UInt8](repeating: 0x20, count: 128 - 10 - dict.utf8.count - 1) + [0x0A]
        #expect(NPYFormat.header(descr: "<f4", shape: [2, 3]) == expected)
        // One dimension keeps numpy's trailing comma; a scalar is ().
        #expect(String(decoding: NPYFormat.header(descr: "<i8", shape: [5]), as: UTF8.self).contains("'shape': (5,), }"))
        #expect(String(decoding: NPYFormat.header(descr: "|u1", shape: []), as: UTF8.self).contains("'shape': (), }"))
    }

    @Test func headersRoundTrip() throws {
        for (descr, shape) in [("<f4", [2, 3]), ("<f8", [7]), ("|u1", []), ("<i8", [0, 4]), ("<f4", [32, 1, 3, 3])] {
            let h = try parse(NPYFormat.header(descr: descr, shape: shape))
            #expect(h.descr == descr && h.shape == shape && h.fortranOrder == false)
            #expect(h.count == shape.reduce(1, *))
            #expect(h.dataOffset % 64 == 0 && h.dataOffset == NPYFormat.header(descr: descr, shape: shape).count)
        }
    }

    @Test func aDictOver64KiBUsesVersion2() throws {
        let shape = [Int](repeating: 1, count: 25_000)  // "1, " × 25,000: a 75 KB dict
        let bytes = NPYFormat.header(descr: "<f4", shape: shape)
        #expect(bytes[6] == 2 && bytes.count % 64 == 0)
        let length = (0 ..< 4).reduce(0) { $0 | Int(bytes[8 + $1]) << (8 * $1) }
        #expect(length == bytes.count - 12)
        let h = try parse(bytes, maxHeaderBytes: 1 << 20, maxDimensions: 25_000)
        #expect(h.shape == shape && h.count == 1 && h.dataOffset == bytes.count)
        // The default bounds refuse it: too long a header for a peer to send.
        #expect(detail { () throws(NPYFormat.ParseError) in try parse(bytes) }?.contains("exceeds 65536") == true)
    }

    @Test func fortranOrderIsReportedNotJudged() throws {
        #expect(try parse(header(dict: "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }")).fortranOrder == true)
        #expect(try parse(header(dict: "{'descr': '<f4', 'shape': (2, 2), }")).fortranOrder == nil)
    }

    @Test(arguments: [
        ([0x93, 0x4E, 0x55], "3 bytes, shorter than an .npy header"),
        (Array("PK\u{3}\u{4}hello world".utf8), "starts with 50 4b 3 4 68 65"),
        (NPYFormat.magic + [4, 0, 10, 0], "version 4 is not supported"),
        (NPYFormat.magic + [2, 0, 10, 0], "header cut short"),
        (Array(NPYFormat.header(descr: "<f4", shape: [1]).prefix(40)), "truncated .npy"),
        (NPYFormat.magic + [1, 0, 2, 0, 0xFF, 0xFE], "not text"),
        (header(dict: "{'fortran_order': False, 'shape': (2,), }"), "no 'descr'"),
        (header(dict: "{'descr': '<f4', 'fortran_order': False, }"), "no readable 'shape'"),
        (header(dict: "{'descr': '<f4', 'fortran_order': False, 'shape': [2, 2], }"), "no readable 'shape'"),
        (header(dict: "{'descr': '<f4', 'fortran_order': maybe, 'shape': (2,), }"), "not True or False"),
        (header(dict: "{'descr': '<f4', 'fortran_order': False, 'shape': (2, -1), }"), "bad dimension '-1'"),
        (header(dict: "{'descr': '<f4', 'fortran_order': False, 'shape': (2, x), }"), "bad dimension 'x'"),
        (header(dict: "{'descr': '<f4', 'fortran_order': False, 'shape': (2,, 3), }"), "bad dimension ''"),
        (header(dict: "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }"), "bad dimension"),
        (header(dict: "{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4), }"), "impossibly large"),
        (header(dict: "{'descr': '<f4', 'fortran_order': False, 'shape': (" + String(repeating: "1, ", count: 65) + "), }"),
         "65 dimensions exceed the limit of 64"),
    ] as [([UInt8], String)])
    func damagedHeadersAreRefusedWithTheReason(bytes: [UInt8], reason: String) {
        let message = detail { () throws(NPYFormat.ParseError) in try parse(bytes) }
        #expect(message?.contains(reason) == true, "\(message ?? "accepted")")
    }
}
