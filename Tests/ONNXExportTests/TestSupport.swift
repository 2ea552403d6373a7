// Shared helpers: a Python peer (numpy, onnx, onnxruntime: installed by scripts/test-peers).
import Foundation
import TestSupport
import XCTest

/// Runs `script` with python3 once numpy, onnx and onnxruntime import (skips the test, naming
/// scripts/test-peers, when they do not); returns stdout, fails the test on a non-zero exit.
func runPython(_ script: String, _ test: XCTestCase, file: StaticString = #filePath, line: UInt = #line) throws -> String {
    try requirePython(["numpy", "onnx", "onnxruntime"])
    let run = try TestSupport.runPython(script)
    XCTAssertEqual(run.status, 0, "python failed:\n\(run.stderr)", file: file, line: line)
    return run.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
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
