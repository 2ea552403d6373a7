import Foundation
import XCTest

/// The committed protoc-c output must match proto/flower.proto (scripts/gen-proto --check).
final class GeneratedCodeTests: XCTestCase {
    func testCommittedProtobufCCodeIsFresh() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
        let script = root.appendingPathComponent("scripts/gen-proto").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [script, "--check"]
        let errPipe = Pipe()
        process.standardError = errPipe
        process.standardOutput = Pipe()
        try process.run()
        let err = String(decoding: errPipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0,
                       "generated code is stale against proto/flower.proto (or protoc-c is missing): \(err)")
    }
}
