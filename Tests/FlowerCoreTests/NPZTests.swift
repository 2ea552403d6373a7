@testable import FlowerCore
import Foundation
import XCTest

final class NPZTests: XCTestCase {
    func testCRC32CheckValue() {
        XCTAssertEqual(CRC32.checksum(Array("123456789".utf8)), 0xCBF4_3926)
    }

    func testNpyHeaderIsAlignedAndDescribesTheTensor() {
        let bytes = NPZ.npy(shape: [2, 3], values: [1, 2, 3, 4, 5, 6][...])
        let headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
        XCTAssertEqual((10 + headerLength) % 64, 0)
        let header = String(decoding: bytes[10 ..< 10 + headerLength], as: UTF8.self)
        XCTAssertTrue(header.hasPrefix("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"), header)
        XCTAssertEqual(bytes.count, 10 + headerLength + 24)
        XCTAssertEqual(Array(bytes[(10 + headerLength)...].prefix(4)), [0, 0, 0x80, 0x3F])  // 1.0f
    }

    /// numpy reads the archive back: names, shapes and values.
    func testNumpyLoadsTheArchive() throws {
        let p = try Parameters(shapes: [("conv1.weight", [2, 1, 3, 3]), ("conv1.bias", [2]), ("scale", [])],
                               values: (0 ..< 21).map { Float($0) * 0.5 - 3 })
        let dir = try temporaryDirectory("npz")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/model.npz"
        try NPZ.write(p, to: path)
        let script = """
        import sys
        try:
            import numpy as np
        except ImportError:
            print("NO-NUMPY"); sys.exit(0)
        z = np.load(sys.argv[1])
        for name in z.files:
            a = z[name]
            print(name, a.dtype, a.shape, float(a.sum()), float(a.flat[0]))
        """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")  // python3 from PATH (pyenv or system)
        process.arguments = ["python3", "-c", script, path]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        if process.terminationStatus == 127 { throw XCTSkip("python3 is not on PATH") }
        if output.hasPrefix("NO-NUMPY") { throw XCTSkip("numpy is not installed") }
        XCTAssertEqual(process.terminationStatus, 0, output)
        // conv1.weight: 0.5·(0..17) - 3 → sum 0.5·153 - 54 = 22.5; bias: 6 + 6.5; scale: 7.
        XCTAssertEqual(output, """
        conv1.weight float32 (2, 1, 3, 3) 22.5 -3.0
        conv1.bias float32 (2,) 12.5 6.0
        scale float32 () 7.0 7.0

        """)
    }
}
