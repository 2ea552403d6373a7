// Where the tests find things, and the skips that say what to install or run.
import Foundation
import XCTest

/// The package's root folder (for scripts, examples and fixtures).
public let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

/// Debian's real Fashion-MNIST (scripts/bootstrap installs `dataset-fashion-mnist`).
public let fashionMNISTDirectory = "/usr/share/datasets/fashion-mnist"

/// Skips the calling test unless this is an optimised build: SIMD kernels run ~100x slower at
/// -Onone, so heavy tests (the *ReleaseTests classes) run under `swift test -c release`.
public func requireReleaseBuild() throws {
    #if DEBUG
    throw XCTSkip("release-only: run swift test -c release (scripts/test does)")
    #endif
}

/// Skips the calling test when Debian's real Fashion-MNIST is not installed.
public func requireFashionMNIST() throws {
    guard FileManager.default.fileExists(atPath: fashionMNISTDirectory + "/train-labels-idx1-ubyte.gz") else {
        throw XCTSkip("Fashion-MNIST not installed: run scripts/bootstrap")
    }
}

/// Skips the calling test unless python3 imports every module in `modules`.
public func requirePython(_ modules: [String]) throws {
    guard pythonCanImport(modules) else {
        throw XCTSkip("python3 cannot import \(modules.joined(separator: ", ")): run scripts/test-peers")
    }
}

/// The flwr binary built beside this test bundle (the same build as the tests); skips the
/// calling test when it is missing.
public func flwrBinaryPath() throws -> String {
    let dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for candidate in [dir, dir.deletingLastPathComponent()] {
        let path = candidate.appendingPathComponent("flwr").path
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    throw XCTSkip("no flwr binary beside \(dir.path); run swift build -c release --build-tests -Xswiftc -enable-testing (scripts/test) first")
}

/// A fresh folder under the system's temporary directory whose name starts with `prefix`.
public func makeTemporaryFolder(_ prefix: String) throws -> String {
    let path = NSTemporaryDirectory() + "\(prefix)-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

extension XCTestCase {
    /// A fresh temporary folder, removed when the test ends.
    public func temporaryFolder(_ prefix: String = "flwr-test") throws -> String {
        let path = try makeTemporaryFolder(prefix)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }
}
