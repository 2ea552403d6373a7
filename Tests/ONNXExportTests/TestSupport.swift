// Shared helpers: a Python peer (numpy, onnx, onnxruntime: installed by scripts/test-peers).
import Foundation
import XCTest

/// Runs `script` with python3 once numpy, onnx and onnxruntime import (skips the test, naming
/// scripts/test-peers, when they do not); returns stdout, fails the test on a non-zero exit.
func runPython(_ script: String, _ test: XCTestCase, file: StaticString = #filePath, line: UInt = #line) throws -> String {
    func run(_ args: [String]) throws -> (Int32, String, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = args
        let out = Pipe(), err = Pipe()
        process.standardOutput = out; process.standardError = err
        try process.run()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }
    if try run(["python3", "-c", "import numpy, onnx, onnxruntime"]).0 != 0 {
        throw XCTSkip("numpy, onnx and onnxruntime must import: run scripts/test-peers")
    }
    let (status, out, err) = try run(["python3", "-c", script])
    XCTAssertEqual(status, 0, "python failed:\n\(err)", file: file, line: line)
    return out.trimmingCharacters(in: .whitespacesAndNewlines)
}

/// A fresh temporary folder, removed when the test ends.
func temporaryFolder(_ test: XCTestCase) throws -> String {
    let path = NSTemporaryDirectory() + "onnx-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
    return path
}

/// Deterministic pseudo-random floats in [-scale, scale) (an LCG; tests only).
func pseudoRandom(_ count: Int, seed: UInt64, scale: Float = 0.5) -> [Float] {
    var s = seed &* 6364136223846793005 &+ 1442695040888963407
    return (0 ..< count).map { _ in
        s = s &* 6364136223846793005 &+ 1442695040888963407
        return (Float(s >> 40) / Float(1 << 24) * 2 - 1) * scale
    }
}

/// Writes float32 little-endian values to `path` (numpy.fromfile reads them).
func writeFloats(_ values: [Float], to path: String) throws {
    try values.withUnsafeBytes { try Data($0).write(to: URL(fileURLWithPath: path)) }
}
