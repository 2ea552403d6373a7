import Foundation
import TestSupport
import XCTest

/// The operations listener of a real `flwr server` process, probed with Debian's curl: the 200
/// and 503 answers of /healthz and /readyz, 404/405, and a wedged event loop seen by /healthz.
/// No training (--dataset none); the binary scripts/test builds carries the test-only hook
/// `POST /debug/block-event-loops` (FLWR_DEBUG_HOOKS=1; compiled out of shipped builds).
final class OpsProbeTests: ProcessTestCase {
    override var folderPrefix: String { "flwr-ops" }

    private func startServer(extra: [String] = []) throws -> (ChildProcess, String) {
        let server = try spawn("server", ["server", "--host", "127.0.0.1", "--port", "0", "--http-port", "0", "--dataset", "none",
                                   "--min-clients", "2", "--rounds", "1", "--wait-timeout", "300"] + extra,
                                  environment: ["FLWR_DEBUG_HOOKS": "1"])
        let port = try XCTUnwrap(server.waitForLog(#"operations HTTP on 127\.0\.0\.1:(\d+)"#, seconds: 60),
                                 "no HTTP port in the log:\n\(server.log)")
        return (server, "http://127.0.0.1:\(port)")
    }

    func testProbesAnswerAndReadinessWaitsForMinClients() throws {
        #if !(DEBUG || FLWR_TEST_HOOKS)
        throw XCTSkip("needs the test hooks: a debug build, or a release build with -Xswiftc -DFLWR_TEST_HOOKS (scripts/test)")
        #endif
        let (server, base) = try startServer(extra: ["--ready-when-min-clients"])

        let health = try curlUntil(base + "/healthz", seconds: 30) { $0.code == 200 }
        XCTAssertEqual(health.code, 200, "\(health)\n\(server.log)")
        XCTAssertEqual(health.body, "ok\n")

        // Listening, but 0 of the 2 clients needed are connected: 503 with the reason.
        let ready = try curlUntil(base + "/readyz", seconds: 30) { $0.body.contains("clients needed") }
        XCTAssertEqual(ready.code, 503, "\(ready)")
        XCTAssertEqual(ready.body, "not ready: 0 of the 2 clients needed (--min-clients) are connected\n")

        let metrics = try curl(base + "/metrics")
        XCTAssertEqual(metrics.code, 200)
        XCTAssertTrue(metrics.body.contains("# TYPE flwr_clients_connected gauge\nflwr_clients_connected 0"), metrics.body)
        XCTAssertTrue(metrics.body.contains("flwr_rounds_planned 1"), metrics.body)

        XCTAssertEqual(try curl(base + "/nothing").code, 404)
        XCTAssertEqual(try curl(base + "/healthz", method: "DELETE").code, 405)
        XCTAssertEqual(try curl(base + "/healthz", method: "HEAD").code, 200)
    }

    func testWedgedEventLoopFailsHealthz() throws {
        #if !(DEBUG || FLWR_TEST_HOOKS)
        throw XCTSkip("needs the test hooks: a debug build, or a release build with -Xswiftc -DFLWR_TEST_HOOKS (scripts/test)")
        #endif
        let (server, base) = try startServer()
        XCTAssertEqual(try curlUntil(base + "/healthz", seconds: 30) { $0.code == 200 }.code, 200, server.log)
        // Without --ready-when-min-clients the server is ready once it listens.
        let ready = try curlUntil(base + "/readyz", seconds: 30) { $0.code == 200 }
        XCTAssertEqual(ready.body, "ready\n")

        let block = try curl(base + "/debug/block-event-loops?seconds=20", method: "POST")
        XCTAssertEqual(block.code, 202, "\(block)")
        let wedged = try curl(base + "/healthz", maxTime: 8)
        if wedged.exit == 0 {
            // Another loop than the one serving HTTP is blocked: named in a 503.
            XCTAssertEqual(wedged.code, 503, "a wedged loop must fail the probe: \(wedged)")
            XCTAssertTrue(wedged.body.hasPrefix("unhealthy: event loop "), wedged.body)
            XCTAssertTrue(wedged.body.contains("did not answer within 2.0 s"), wedged.body)
        } else {
            // A one-loop machine: the loop serving /healthz is the blocked one, the probe times out.
            XCTAssertEqual(wedged.exit, 28, "curl should time out, got \(wedged)")
        }
    }

    /// The client's /readyz is 503 until it has joined a server (none here: port 1 refuses).
    func testClientNotReadyUntilConnected() throws {
        try requireFashionMNIST()
        let real = try spawn("client2", ["client", "--server", "127.0.0.1:1", "--http-port", "0", "--http-host", "127.0.0.1",
                                 "--connect-deadline", "300", "--partition", "0", "--num-partitions", "50"])
        let port = try XCTUnwrap(real.waitForLog(#"operations HTTP on 127\.0\.0\.1:(\d+)"#, seconds: 60), real.log)
        let ready = try curlUntil("http://127.0.0.1:\(port)/readyz", seconds: 30) { $0.code != 0 }
        XCTAssertEqual(ready.code, 503, "\(ready)")
        XCTAssertEqual(ready.body, "not ready: not connected to the server yet\n")
        XCTAssertEqual(try curl("http://127.0.0.1:\(port)/healthz").code, 200)
        let metrics = try curl("http://127.0.0.1:\(port)/metrics")
        XCTAssertTrue(metrics.body.contains("flwr_client_connected 0"), metrics.body)
    }
}
