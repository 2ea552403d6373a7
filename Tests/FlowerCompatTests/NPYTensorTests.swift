// The .npy reader/writer for Flower's tensors: round trips, bytes exactly as numpy writes them,
// and every refusal a hostile peer can provoke (with the hint the error must carry).
import FlowerCompat
import Testing

/// `.npy` bytes with a hand-written header dict (as numpy 1.x/2.x writes it) and raw data.
func npy(_ dict: String, data: [UInt8], version: UInt8 = 1) -> [UInt8] {
    let prefix = version == 1 ? 10 : 12
    let total = (prefix + dict.utf8.count + 1 + 63) / 64 * 64
    let headerLength = total - prefix
    var out: [UInt8] = [0x93] + Array("NUMPY".utf8) + [version, 0]
    out += version == 1 ? [UInt8(headerLength & 0xFF), UInt8(headerLength >> 8)]
                        : (0 ..< 4).map { UInt8((headerLength >> (8 * $0)) & 0xFF) }
    out += Array(dict.utf8)
    out += [UInt8](repeating: 0x20, count: total - out.count - 1) + [0x0A]
    return out + data
}

func bytes<T>(_ values: [T]) -> [UInt8] { values.withUnsafeBytes { Array($0) } }

func decode(_ b: [UInt8]) throws(CompatError) -> (NPYTensor.Header, [Float]) {
    try b.withUnsafeBytes { raw in
        Result { () throws(CompatError) in
            let h = try NPYTensor.header(raw, index: 0)
            var out: [Float] = []
            NPYTensor.appendValues(raw, h, to: &out)
            return (h, out)
        }
    }.get()
}

@Suite struct NPYTensorTests {
    @Test(arguments: [[Int](), [3], [2, 3, 4], [1, 0, 5]])
    func roundTripKeepsShapeAndValues(shape: [Int]) throws {
        let n = shape.reduce(1, *)
        let values = (0 ..< n).map { Float($0) * 0.5 - 1.25 }
        let encoded = values.withUnsafeBufferPointer { NPYTensor.encode(shape: shape, values: $0) }
        #expect(encoded.count % 64 == (n * 4) % 64, "data starts on a 64-byte boundary")
        let (h, back) = try decode(encoded)
        #expect(h.shape == shape)
        #expect(h.dtype == .float32)
        #expect(back == values)
    }

    /// np.save of np.zeros((2, 3), np.float32) and np.zeros(4, np.float32) with numpy 2.4.6: the
    /// header dict padded with spaces to 128 bytes (header length 0x76), then the data.
    @Test(arguments: [([2, 3], "(2, 3)"), ([4], "(4,)")])
    func writesTheBytesNumpyWrites(_ c: ([Int], String)) {
        let (shape, text) = c
        let n = shape.reduce(1, *)
        let ours = [Float](repeating: 0, count: n).withUnsafeBufferPointer { NPYTensor.encode(shape: shape, values: $0) }
        var numpy: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0, 0x76, 0]
        numpy += Array("{'descr': '<f4', 'fortran_order': False, 'shape': \(text), }".utf8)
        numpy += [UInt8](repeating: 0x20, count: 127 - numpy.count) + [0x0A] + [UInt8](repeating: 0, count: n * 4)
        #expect(ours == numpy)
    }

    @Test func float64IsConvertedToFloat32() throws {
        let doubles: [Double] = [1.5, -2.25, 1e-3, 3.0e38]
        let (h, floats) = try decode(npy("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }", data: bytes(doubles)))
        #expect(h.dtype == .float64)
        #expect(h.shape == [2, 2])
        #expect(floats == doubles.map { Float($0) })
    }

    @Test func version2HeaderIsRead() throws {
        let (h, floats) = try decode(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", data: bytes([Float(1), 2, 3]), version: 2))
        #expect(h.shape == [3])
        #expect(floats == [1, 2, 3])
    }

    static let refusals: [(String, [UInt8], String)] = [
        ("int64", npy("{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", data: bytes([Int64(1), 2])), "dtype '<i8' refused"),
        ("float16", npy("{'descr': '<f2', 'fortran_order': False, 'shape': (2,), }", data: [0, 0, 0, 0]), "convert with arr.astype(np.float32)"),
        ("big-endian", npy("{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }", data: [0, 0, 0, 0]), "big-endian"),
        ("object", npy("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", data: [0, 0, 0, 0, 0, 0, 0, 0]), "dtype '|O' refused"),
        ("Fortran order", npy("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", data: bytes([Float](repeating: 0, count: 4))), "np.ascontiguousarray"),
        ("truncated data", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", data: bytes([Float(1), 2, 3])), "16 bytes of data, 12 present (truncated"),
        ("trailing bytes", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", data: bytes([Float(1), 2])), "4 bytes of data, 8 present"),
        ("huge shape", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4611686018427387904), }", data: []), "impossibly large"),
        ("huge size", npy("{'descr': '<f8', 'fortran_order': False, 'shape': (2305843009213693952,), }", data: []), "more than"),
        ("too many dims", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (" + String(repeating: "1, ", count: 33) + "), }", data: [0, 0, 0, 0]), "dimensions exceed"),
        ("negative dim", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", data: []), "bad dimension '-1'"),
        ("no magic", Array("not numpy at all".utf8), "no \\x93NUMPY magic"),
        ("short", [0x93, 0x4E, 0x55], "shorter than an .npy header"),
        ("header past end", Array(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", data: []).prefix(40)), "truncated .npy"),
        ("version 9", [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 9, 0, 0, 0], "version 9"),
    ]

    @Test(arguments: refusals)
    func hostileTensorsAreRefusedWithAHint(_ refusal: (String, [UInt8], String)) {
        let (name, bytes, hint) = refusal
        do {
            _ = try decode(bytes)
            Issue.record("\(name): accepted")
        } catch {
            #expect(error.description.contains(hint), "\(name): \(error.description)")
            #expect(error.description.hasPrefix("tensor #0:"), "\(name)")
        }
    }

    @Test func everyTruncationOfAValidTensorIsRefused() {
        let full = [Float](repeating: 1, count: 10).withUnsafeBufferPointer { NPYTensor.encode(shape: [2, 5], values: $0) }
        for cut in 0 ..< full.count {
            #expect(throws: CompatError.self) { _ = try decode(Array(full.prefix(cut))) }
        }
    }
}
