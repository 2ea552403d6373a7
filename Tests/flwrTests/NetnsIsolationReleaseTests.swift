// scripts/netns-federation-test --isolation-only: the NetworkPolicy rules, as nftables rules in
// Linux network namespaces, let a client reach the server port and nothing else, and let nothing
// reach a client. Skips (with the script's reason) where namespaces cannot be created.
import Foundation
import XCTest

final class NetnsIsolationReleaseTests: XCTestCase {
    override func setUpWithError() throws {
        #if DEBUG
        throw XCTSkip("release-only: run swift test -c release --filter ReleaseTests")
        #endif
    }

    func testClientsReachOnlyTheServerPort() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let process = Process()
        process.executableURL = root.appendingPathComponent("scripts/netns-federation-test")
        process.arguments = ["--isolation-only"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        if process.terminationStatus == 77 { throw XCTSkip(text) }
        XCTAssertEqual(process.terminationStatus, 0, text)
        for check in ["ok: control: without rules a client reaches another client",
                      "ok: a client cannot connect to another client", "ok: the server cannot connect to a client",
                      "ok: a client cannot reach another port of the server", "ok: client 2 reaches the server port"] {
            XCTAssertTrue(text.contains(check), "missing \"\(check)\" in:\n\(text)")
        }
    }

    /// The real binary: a server and 3 clients, each in its own namespace behind the same rules,
    /// complete a federation while a client still cannot reach another client.
    func testFederationCompletesAcrossNamespaces() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        guard let binary = [dir, dir.deletingLastPathComponent()].map({ $0.appendingPathComponent("flwr").path })
            .first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw XCTSkip("no flwr binary beside \(dir.path); run swift build -c release --product flwr first")
        }
        let process = Process()
        process.executableURL = root.appendingPathComponent("scripts/netns-federation-test")
        process.arguments = [binary]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        if process.terminationStatus == 77 { throw XCTSkip(text) }
        XCTAssertEqual(process.terminationStatus, 0, text)
        XCTAssertTrue(text.contains("during the federation a client cannot connect to another client"), text)
        XCTAssertTrue(text.contains("federation completed"), text)
    }
}
