import Foundation
import XCTest

/// The committed protoc-c output must match proto/onnx/onnx.proto (scripts/gen-onnx --check).
final class ONNXGeneratedCodeTests: XCTestCase {
    func testCommittedONNXProtobufCCodeIsFresh() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [root.appendingPathComponent("scripts/gen-onnx").path, "--check"]
        let errPipe = Pipe()
        process.standardError = errPipe
        process.standardOutput = Pipe()
        try process.run()
        let err = String(decoding: errPipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0,
                       "generated code is stale against proto/onnx/onnx.proto (or protoc-c is missing): \(err)")
    }
}
