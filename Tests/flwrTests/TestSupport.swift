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

/// Skips the calling test in a debug build: heavy tests run in release
/// (`swift test -c release --filter ReleaseTests`, as scripts/test does).
func requireReleaseBuild() throws {
    #if DEBUG
    throw XCTSkip("release-only: run swift test -c release --filter ReleaseTests")
    #endif
}

/// Skips the calling test when Debian's real Fashion-MNIST is not installed.
func requireFashionMNIST() throws {
    guard FileManager.default.fileExists(atPath: "/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz") else {
        throw XCTSkip("Fashion-MNIST not installed: run scripts/bootstrap")
    }
}

/// Runs `executable` with `arguments` to completion; stdout and stderr merged into `output`.
func runProgram(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: executable)
    p.arguments = arguments
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = pipe
    try p.run()
    let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    p.waitUntilExit()
    return (p.terminationStatus, out)
}
