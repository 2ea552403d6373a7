import Foundation
import XCTest

/// The flwr binary built beside this test bundle (scripts/test builds it before the release
/// tests); skips the calling test with a hint when it is missing.
func flwrBinaryPath() throws -> String {
    let dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for candidate in [dir, dir.deletingLastPathComponent()] {
        let path = candidate.appendingPathComponent("flwr").path
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    throw XCTSkip("no flwr binary beside \(dir.path); run swift build -c release --product flwr first")
}

/// The package's root folder (for scripts and examples).
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()
