// scripts/netns-federation-test --isolation-only: the NetworkPolicy rules, as nftables rules in
// Linux network namespaces, let a client reach the server port and nothing else, and let nothing
// reach a client; with a flwr binary a federation completes across them; with --own-data each
// client reads only its own site's folder and the wire carries parameters only. Skips (with the
// script's reason) where namespaces cannot be created.
import Foundation
import TestSupport
import XCTest

final class NetnsIsolationReleaseTests: XCTestCase {
    override func setUpWithError() throws {
        try requireReleaseBuild()
    }

    func testClientsReachOnlyTheServerPort() throws {
        let text = try runScript(["--isolation-only"])
        for check in ["ok: control: without rules a client reaches another client",
                      "ok: a client cannot connect to another client", "ok: the server cannot connect to a client",
                      "ok: a client cannot reach another port of the server", "ok: client 2 reaches the server port"] {
            XCTAssertTrue(text.contains(check), "missing \"\(check)\" in:\n\(text)")
        }
    }

    /// The real binary: a server and 3 clients, each in its own namespace behind the same rules,
    /// complete a federation over mutual TLS (`flwr certs`) while a client still cannot reach
    /// another client.
    func testFederationCompletesAcrossNamespaces() throws {
        let text = try runScript([try flwrBinaryPath()])
        XCTAssertTrue(text.contains("during the federation a client cannot connect to another client"), text)
        XCTAssertTrue(text.contains("ok: mutual TLS 1.3: every client joined with the certificate identity partition-i"), text)
        XCTAssertTrue(text.contains("federation completed"), text)
    }

    /// Edge sites: each client host reads its own folder (an .npz of a Dirichlet split
    /// written beforehand) with no partition flags; the server host holds no dataset; the tcpdump
    /// capture on the server's interface holds parameter messages only and no training image.
    func testClientsOnTheirOwnDataSendParametersOnly() throws {
        let text = try runScript(["--own-data", try flwrBinaryPath()])
        for check in ["ok: the server host holds no dataset", "ok: each client trained on all of its own folder",
                      "no training image on the wire", "ok: the wire carried parameters only",
                      "during the federation a client cannot connect to another client", "federation completed"] {
            XCTAssertTrue(text.contains(check), "missing \"\(check)\" in:\n\(text)")
        }
    }

    /// Runs scripts/netns-federation-test; skips with its reason when it exits 77 (no namespaces),
    /// fails on any other non-zero exit; returns what it printed.
    private func runScript(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = packageRoot.appendingPathComponent("scripts/netns-federation-test")
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        if process.terminationStatus == 77 { throw XCTSkip(text) }
        XCTAssertEqual(process.terminationStatus, 0, text)
        return text
    }
}
