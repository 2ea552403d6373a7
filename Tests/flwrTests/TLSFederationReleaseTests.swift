// Real `flwr server` and three `flwr client` processes over mutual TLS 1.3 with certificates from
// `flwr certs`, against the same federation over plain TCP with an auth token from a file: the
// same seeds give the same accuracies (TLS changes the bytes on the wire, not the training).
// Also: a server on a non-loopback address refuses to start open, and says what to add.
import Foundation
import TestSupport
import XCTest

final class TLSFederationReleaseTests: FederationTestCase {
    override var folderPrefix: String { "flwr-tls-e2e" }

    /// Runs server + 3 clients to the end with `serverExtra`/`clientExtra(i)`; the accuracies per round.
    private func federation(_ name: String, serverExtra: [String], clientExtra: (Int) -> [String]) throws -> [Double] {
        try federationRows(name, serverExtra: serverExtra, clientExtra: clientExtra).map { row in
            try XCTUnwrap(row["accuracy"] as? Double)
        }
    }

    /// Runs server + 3 clients for `rounds` rounds; the history's rows.
    private func federationRows(_ name: String, rounds: Int = 2, serverExtra: [String],
                                clientExtra: (Int) -> [String]) throws -> [[String: Any]] {
        let history = "\(dir)/\(name).jsonl"
        let server = try spawn("\(name)-server", ["server", "--host", "127.0.0.1", "--port", "0", "--rounds", "\(rounds)", "--min-clients", "3",
                                "--max-test-examples", "500", "--wait-timeout", "60", "--round-timeout", "120",
                                "--metrics-out", history, "--seed", "7"] + serverExtra)
        let port = try server.listeningPort()
        let clients = try (0 ..< 3).map { i in
            try spawn("\(name)-client\(i)", ["client", "--server", "127.0.0.1:\(port)", "--partition", "\(i)", "--num-partitions", "3",
                       "--max-train-examples", "300", "--threads", "1", "--lr", "0.05", "--connect-deadline", "60"]
                      + clientExtra(i))
        }
        XCTAssertEqual(server.wait(seconds: 240), 0, "\(name) server log:\n\(server.log)")
        for (i, c) in clients.enumerated() { XCTAssertEqual(c.wait(seconds: 30), 0, "\(name) client \(i) log:\n\(c.log)") }
        let text = try String(contentsOfFile: history, encoding: .utf8)
        return try text.split(separator: "\n").map { line in
            try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        }
    }

    func testMutualTLSFederationMatchesPlainAccuracies() throws {
        let certs = "\(dir)/certs"
        let made = try spawn("certs", ["certs", "--out", certs, "--server-name", "localhost", "--server-name", "127.0.0.1",
                              "--clients", "3"])
        XCTAssertEqual(made.wait(seconds: 60), 0, made.log)
        let token = "\(dir)/token"
        try "3f1b6c0d9e8a7b6c5d4e3f2a1b0c9d8e\n".write(toFile: token, atomically: true, encoding: .utf8)

        let plain = try federation("plain", serverExtra: ["--auth-token-file", token],
                                   clientExtra: { _ in ["--auth-token-file", token] })
        let tls = try federation("mtls", serverExtra: ["--tls-cert", "\(certs)/server.pem", "--tls-key", "\(certs)/server.key",
                                                       "--tls-client-ca", "\(certs)/ca.pem"],
                                 clientExtra: { i in ["--tls-ca", "\(certs)/ca.pem", "--tls-cert", "\(certs)/client-\(i).pem",
                                                      "--tls-key", "\(certs)/client-\(i).key"] })
        XCTAssertEqual(plain.count, 2)
        XCTAssertEqual(tls, plain, "mutual TLS \(tls) vs plain \(plain)")
        XCTAssertGreaterThan(tls.last ?? 0, 0.2, "10 classes: chance is 0.1")
        let serverLog = try String(contentsOfFile: "\(dir)/mtls-server.log", encoding: .utf8)
        XCTAssertTrue(serverLog.contains("connections secured: TLS 1.3 with mutual TLS"), serverLog)
        for i in 0 ..< 3 { XCTAssertTrue(serverLog.contains("client partition-\(i) joined"), serverLog) }
    }

    /// SecAgg+ between real `flwr server` and `flwr client` processes over mutual TLS: 3 rounds, every
    /// round aggregated from the three clients' masked inputs, the final accuracy within 0.5 point
    /// of the same federation without it.
    func testSecureAggregationOverMutualTLSMatchesPlainAccuracy() throws {
        let certs = "\(dir)/certs"
        let made = try spawn("certs", ["certs", "--out", certs, "--server-name", "127.0.0.1", "--clients", "3"])
        XCTAssertEqual(made.wait(seconds: 60), 0, made.log)
        let server = ["--tls-cert", "\(certs)/server.pem", "--tls-key", "\(certs)/server.key", "--tls-client-ca", "\(certs)/ca.pem"]
        let client: (Int) -> [String] = { i in
            ["--tls-ca", "\(certs)/ca.pem", "--tls-cert", "\(certs)/client-\(i).pem", "--tls-key", "\(certs)/client-\(i).key"]
        }
        let plain = try federationRows("tls-plain", rounds: 3, serverExtra: server, clientExtra: client)
        let secure = try federationRows("tls-secagg", rounds: 3, serverExtra: server + ["--secagg", "--secagg-clipping-range", "1"],
                                        clientExtra: client)
        XCTAssertEqual(plain.count, 3)
        XCTAssertEqual(secure.count, 3)
        for row in secure {
            XCTAssertEqual(row["secagg"] as? [String: Int], ["sampled": 3, "sent": 3, "dropped": 0, "recovered": 0], "\(row)")
        }
        let a = try XCTUnwrap(plain.last?["accuracy"] as? Double), b = try XCTUnwrap(secure.last?["accuracy"] as? Double)
        XCTAssertGreaterThan(a, 0.3, "the plain federation must learn for the comparison to mean anything")
        XCTAssertEqual(b, a, accuracy: 0.005, "secure aggregation over mutual TLS \(b) against plain \(a)")
        let log = try String(contentsOfFile: "\(dir)/tls-secagg-server.log", encoding: .utf8)
        XCTAssertTrue(log.contains("connections secured: TLS 1.3 with mutual TLS"), log)
        XCTAssertTrue(log.contains("secure aggregation: 3 sent, 0 dropped"), log)
    }

    func testNonLoopbackServerRefusesToRunOpen() throws {
        let open = try spawn("open", ["server", "--host", "0.0.0.0", "--port", "0", "--dataset", "none"])
        XCTAssertEqual(open.wait(seconds: 60), 64, open.log)  // ArgumentParser's validation exit code
        XCTAssertTrue(open.log.contains("refusing to listen on 0.0.0.0 without TLS or an auth token"), open.log)
        XCTAssertTrue(open.log.contains("--tls-cert") && open.log.contains("--auth-token-file") && open.log.contains("--insecure"), open.log)
        // A plaintext Flower port on such an address is refused even with a token for our port:
        // Flower's protocol cannot carry it.
        let token = FileManager.default.temporaryDirectory.appendingPathComponent("flwr-token-\(getpid())").path
        try "0123456789abcdef0123456789abcdef\n".write(toFile: token, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: token) }
        let flower = try spawn("flower-open", ["server", "--host", "0.0.0.0", "--port", "0", "--dataset", "none", "--auth-token-file", token,
                                "--flower-port", "0"])
        XCTAssertEqual(flower.wait(seconds: 60), 64, flower.log)
        XCTAssertTrue(flower.log.contains("refusing to serve Flower's protocol in plaintext on 0.0.0.0:0"), flower.log)
        XCTAssertTrue(flower.log.contains("--flower-tls-cert") && flower.log.contains("--insecure"), flower.log)
        // Loopback is exempt; --insecure starts it anyway (both then wait for clients: stop them).
        for args in [["--host", "127.0.0.1"], ["--host", "0.0.0.0", "--insecure"]] {
            let server = try spawn("ok\(args.count)", ["server", "--port", "0", "--dataset", "none", "--wait-timeout", "600"] + args)
            XCTAssertTrue(server.waitFor("waiting for", seconds: 60), server.log)
            server.killHard()
        }
    }
}
