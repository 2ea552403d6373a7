@testable import CIFARLoader
import FlowerZlib
import Foundation
import XCTest

/// Runs `python3 -c script` with numpy; skips the test if python3 or numpy is missing.
func runNumpy(_ script: String, _ test: XCTestCase) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", "-c", "import numpy as np\n" + script]
    let out = Pipe(), err = Pipe()
    process.standardOutput = out; process.standardError = err
    do { try process.run() } catch { throw XCTSkip("python3 not runnable: \(error)") }
    let stdout = out.fileHandleForReading.readDataToEndOfFile()
    let stderr = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    let errText = String(decoding: stderr, as: UTF8.self)
    if errText.contains("No module named 'numpy'") { throw XCTSkip("numpy missing: run scripts/test-peers") }
    XCTAssertEqual(process.terminationStatus, 0, "python failed: \(errText)")
    return String(decoding: stdout, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
}

final class NPZTests: XCTestCase {
    func testNpyHeaderIsNumpysFormatByHand() {
        let header = NPZArray(name: "w", shape: [2, 3], floats: [0, 1, 2, 3, 4, 5]).npyHeader()
        XCTAssertEqual(header.count, 128, "10 + 60-byte dict + newline, padded to a 64-byte boundary (numpy writes 128 too)")
        XCTAssertEqual(Array(header.prefix(8)), [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0])
        XCTAssertEqual(Int(header[8]) | Int(header[9]) << 8, 118)
        let text = String(decoding: header[10...], as: UTF8.self)
        XCTAssert(text.hasPrefix("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"), text)
        XCTAssertEqual(header.last, 0x0A)
        let vector = String(decoding: NPZArray(name: "v", shape: [5], int64s: [1, 2, 3, 4, 5]).npyHeader()[10...], as: UTF8.self)
        XCTAssert(vector.contains("'shape': (5,)") && vector.contains("'<i8'"), vector)
        XCTAssert(String(decoding: NPZArray(name: "s", shape: [], int64s: [7]).npyHeader(), as: UTF8.self).contains("'shape': ()"))
    }

    func testRoundTripIsExactAndByteIdentical() throws {
        let dir = try temporaryFolder(self)
        let arrays = [
            NPZArray(name: "conv1.weight", shape: [2, 1, 3, 3], floats: (0 ..< 18).map { Float($0) * 0.25 - 2 }),
            NPZArray(name: "conv1.bias", shape: [2], floats: [.pi, -0]),
            NPZArray(name: "labels", shape: [4], int64s: [0, 9, -1, Int64.max]),
            NPZArray(name: "empty", shape: [0, 3], floats: []),
        ]
        try NPZ.write(arrays, to: "\(dir)/a.npz")
        XCTAssertEqual(try NPZ.read("\(dir)/a.npz"), arrays)
        try NPZ.write(arrays, to: "\(dir)/b.npz")
        XCTAssertEqual(try readFileBytes("\(dir)/a.npz"), try readFileBytes("\(dir)/b.npz"), "same input, same bytes")
    }

    func testNumpyLoadsWhatWeWrite() throws {
        let dir = try temporaryFolder(self)
        let weights = (0 ..< 24).map { Float($0) / 7 }
        try NPZ.write([NPZArray(name: "conv1.weight", shape: [2, 3, 4], floats: weights),
                       NPZArray(name: "labels", shape: [3], int64s: [3, 1, 4])], to: "\(dir)/m.npz")
        let out = try runNumpy("""
            z = np.load('\(dir)/m.npz')
            w = z['conv1.weight']; l = z['labels']
            assert w.dtype == np.float32 and w.shape == (2, 3, 4), (w.dtype, w.shape)
            assert l.dtype == np.int64 and list(l) == [3, 1, 4], l
            assert np.array_equal(w.ravel(), (np.arange(24, dtype=np.float32) / np.float32(7)))
            print(sorted(z.files), float(w[1, 2, 3]))
            """, self)
        XCTAssertEqual(out, "['conv1.weight', 'labels'] \(Double(Float(23) / 7))")
    }

    func testWeReadNumpysSavezAndSavezCompressed() throws {
        let dir = try temporaryFolder(self)
        _ = try runNumpy("""
            a = (np.arange(60, dtype=np.float32) / 3).reshape(3, 4, 5)
            np.savez('\(dir)/plain.npz', a=a, b=np.array([5, -6], dtype=np.int32), c=np.float64(2.5))
            np.savez_compressed('\(dir)/packed.npz', a=a, u=np.arange(256, dtype=np.uint8))
            """, self)
        for name in ["plain", "packed"] {
            let arrays = try NPZ.read("\(dir)/\(name).npz")
            let a = try XCTUnwrap(arrays.first { $0.name == "a" })
            XCTAssertEqual(a.shape, [3, 4, 5]); XCTAssertEqual(a.dtype, .float32)
            XCTAssertEqual(a.floats(), (0 ..< 60).map { Float($0) / 3 })
        }
        let plain = try NPZ.read("\(dir)/plain.npz")
        XCTAssertEqual(plain.first { $0.name == "b" }?.int64s(), [5, -6])
        XCTAssertEqual(plain.first { $0.name == "c" }?.shape, [])
        XCTAssertEqual(plain.first { $0.name == "c" }?.floats(), [2.5])
        XCTAssertEqual(try NPZ.read("\(dir)/packed.npz").first { $0.name == "u" }?.int64s(), (0 ..< 256).map(Int64.init))
    }

    /// numpy's big-endian arrays are refused with the fix named, not read as little-endian;
    /// '=' (native) and '|' byte orders are read.
    func testBigEndianIsRefusedNativeOrderIsRead() throws {
        let dir = try temporaryFolder(self)
        _ = try runNumpy("""
            np.savez('\(dir)/be.npz', w=np.arange(3, dtype='>f4'))
            np.savez('\(dir)/u8.npz', b=np.arange(3, dtype='|u1'))
            """, self)
        assertLoaderError(try NPZ.read("\(dir)/be.npz"), contains: ["'>f4' is not supported", "little-endian"])
        XCTAssertEqual(try NPZ.read("\(dir)/u8.npz").first?.dtype, .uint8)
        XCTAssertEqual(NPZArray.DType(descr: "=f4"), .float32)
        XCTAssertEqual(NPZArray.DType(descr: ">u1"), .uint8)
        XCTAssertNil(NPZArray.DType(descr: ">i8"))
        XCTAssertNil(NPZArray.DType(descr: "f4"))
    }

    func testDamagedArchivesAreClearErrors() throws {
        let dir = try temporaryFolder(self)
        try NPZ.write([NPZArray(name: "x", shape: [100], floats: Array(repeating: 1, count: 100))], to: "\(dir)/x.npz")
        var bytes = try readFileBytes("\(dir)/x.npz")
        bytes[200] ^= 0xFF  // inside the float data
        try writeFile("\(dir)/bad.npz", bytes)
        assertLoaderError(try NPZ.read("\(dir)/bad.npz"), contains: ["bad.npz: x.npy", "CRC-32"])
        try writeFile("\(dir)/cut.npz", Array(bytes.prefix(300)))
        assertLoaderError(try NPZ.read("\(dir)/cut.npz"), contains: ["cut.npz", "cut short"])
        try writeFile("\(dir)/text.npz", Array("hello world, not a zip".utf8))
        assertLoaderError(try NPZ.read("\(dir)/text.npz"), contains: ["text.npz", "wrong magic"])
        assertLoaderError(try NPZ.read("\(dir)/none.npz"), contains: ["none.npz", "no such file"])
    }
}

final class CorruptionTests: XCTestCase {
    /// Thousands of random byte flips in a valid npz, tar and IDX file: each read either succeeds
    /// or throws a LoaderError; none may crash (offsets and sizes come from the damaged bytes).
    func testRandomCorruptionsAreErrorsNeverCrashes() throws {
        let dir = try temporaryFolder(self)
        try NPZ.write([NPZArray(name: "a", shape: [3, 4], floats: (0 ..< 12).map(Float.init)),
                       NPZArray(name: "b", shape: [2], int64s: [1, 2])], to: "\(dir)/ok.npz")
        let npz = try readFileBytes("\(dir)/ok.npz")
        let tar = Tar.archive([("x/data_batch_1.bin", cifarBatch(count: 1, first: 0)), ("y", [1, 2, 3])])
        let idx = idxImages(count: 3, rows: 2, cols: 2) { i, p in UInt8(i + p) }
        var rng = SeededGenerator(seed: 123)
        var failures = 0, successes = 0
        for round in 0 ..< 3000 {
            let original = [npz, tar, idx][round % 3]
            var bytes = original
            for _ in 0 ..< 1 + rng.nextInt(below: 4) {
                bytes[rng.nextInt(below: bytes.count)] = UInt8(truncatingIfNeeded: rng.next())
            }
            if rng.nextInt(below: 5) == 0 { bytes = Array(bytes.prefix(rng.nextInt(below: bytes.count))) }
            do {
                switch round % 3 {
                case 0: _ = try NPZ.parse(bytes, path: "fuzz.npz")
                case 1: _ = try Tar.entries(bytes, path: "fuzz.tar")
                default:
                    let path = "\(dir)/fuzz-idx3-ubyte"
                    try writeFile(path, bytes)
                    _ = try IDX.readImages(path)
                }
                successes += 1
            } catch is LoaderError {
                failures += 1
            }
        }
        XCTAssertGreaterThan(failures, 1000, "most damage is detected (\(failures) errors, \(successes) reads)")
    }
}
