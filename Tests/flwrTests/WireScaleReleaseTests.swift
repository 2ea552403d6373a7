import Foundation
import TestSupport
import XCTest

/// Real `flwr server` processes under load from `flwr bench clients` on loopback: many handshaken
/// idle clients (memory and threads of the server), then a round in which all of them and a real
/// `flwr client` take part; signals at every stage; a failed federation fails its clients.
///
/// CI uses 500 idle clients (the 10,000-client figures are `flwr bench clients` runs recorded in
/// BENCHMARKS.md, "Wire at scale"): each client's round moves the 1.56 MB model both ways.
final class WireScaleReleaseTests: FederationTestCase {
    override var folderPrefix: String { "flwr-scale" }

    /// A server on a port the kernel picks; `listeningPort()` reads it from the log.
    private func server(_ extra: [String]) throws -> ChildProcess {
        try spawn("server", ["server", "--host", "127.0.0.1", "--port", "0", "--max-test-examples", "300",
                             "--wait-timeout", "300", "--round-timeout", "300", "--seed", "7",
                             "--metrics-out", "\(dir)/history.jsonl"] + extra)
    }

    private func realClient(_ port: Int, extra: [String] = []) throws -> ChildProcess {
        try spawn("client", ["client", "--server", "127.0.0.1:\(port)", "--partition", "0", "--num-partitions", "100",
                             "--max-train-examples", "300", "--threads", "1", "--connect-deadline", "120"] + extra)
    }

    /// A field of /proc/PID/status in kB (VmRSS, VmHWM) or as a count (Threads).
    private func status(_ pid: Int32, _ field: String) -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(field + ":") {
            return Int(line.dropFirst(field.count + 1).split(whereSeparator: { $0 == " " || $0 == "\t" }).first ?? "")
        }
        return nil
    }

    func testIdleClientsThenARoundWithAllOfThemAndARealClient() throws {
        let idle = 500
        let srv = try server(["--rounds", "1", "--min-clients", "\(idle + 1)", "--fraction-fit", "1"])
        let port = try srv.listeningPort()
        let bench = try spawn("bench", ["bench", "clients", "--server", "127.0.0.1:\(port)", "--clients", "\(idle)"])
        XCTAssertTrue(bench.waitFor("\"phase\":\"connected\"", seconds: 120), bench.log)
        XCTAssertTrue(bench.log.contains("\"clients\":\(idle),"), bench.log)
        let pid = srv.pid
        let rssIdle = try XCTUnwrap(status(pid, "VmRSS"))
        let threads = try XCTUnwrap(status(pid, "Threads"))
        print("server with \(idle) idle handshaken clients: RSS \(rssIdle / 1024) MB, \(threads) threads")
        XCTAssertLessThanOrEqual(rssIdle, 400 * 1024, "server RSS with \(idle) idle clients")
        XCTAssertLessThanOrEqual(threads, 32, "no thread per connection")

        let client = try realClient(port)
        var peak = 0
        while srv.isRunning {
            peak = max(peak, status(pid, "VmHWM") ?? 0)
            usleep(100_000)  // the peak-RSS sampler's period (a measurement cadence, not a wait)
        }
        XCTAssertEqual(srv.wait(seconds: 1), 0, srv.log.suffix(3000).description)
        XCTAssertEqual(client.wait(seconds: 60), 0, client.log)
        XCTAssertEqual(bench.wait(seconds: 60), 0, bench.log)
        XCTAssertTrue(bench.log.contains("\"fits\":\(idle),"), bench.log)
        let row = try String(contentsOfFile: "\(dir)/history.jsonl", encoding: .utf8)
        let record = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(row.utf8)) as? [String: Any])
        XCTAssertEqual(record["fit_clients"] as? Int, idle + 1, row)
        print("round with \(idle + 1) sampled clients: \(record["seconds"] ?? "?") s, server peak RSS \(peak / 1024) MB")
        XCTAssertLessThanOrEqual(peak, 512 * 1024, "server peak RSS during the \(idle + 1)-client round")
    }

    /// SIGTERM and SIGINT stop the server cleanly while it waits for clients and while it lingers.
    func testServerStopsOnSignalsWhileWaitingAndLingering() throws {
        for sig in [SIGTERM, SIGINT] {
            let waiting = try server(["--rounds", "1", "--min-clients", "5"])
            XCTAssertTrue(waiting.waitFor("waiting for", seconds: 60), waiting.log)
            kill(waiting.pid, sig)
            XCTAssertEqual(waiting.wait(seconds: 20), 0, "stop while waiting on signal \(sig):\n\(waiting.log)")

            let lingering = try server(["--rounds", "1", "--min-clients", "1", "--linger"])
            let lport = try lingering.listeningPort()
            let bench = try spawn("bench-\(sig)", ["bench", "clients", "--server", "127.0.0.1:\(lport)", "--clients", "1"])
            XCTAssertTrue(lingering.waitFor("lingering", seconds: 120), lingering.log)
            XCTAssertEqual(bench.wait(seconds: 30), 0, bench.log)
            kill(lingering.pid, sig)
            XCTAssertEqual(lingering.wait(seconds: 20), 0, "stop while lingering on signal \(sig):\n\(lingering.log)")
        }
    }

    /// A federation that fails makes its clients exit non-zero, with the server's reason.
    func testFailedFederationFailsItsClient() throws {
        let srv = try server(["--rounds", "1", "--min-clients", "1", "--min-fit-clients", "2"])
        let client = try realClient(try srv.listeningPort())
        XCTAssertNotEqual(srv.wait(seconds: 120), 0, srv.log)
        let status = client.wait(seconds: 60)
        XCTAssertNotNil(status)
        XCTAssertNotEqual(status, 0, "a failed federation must not look like success:\n\(client.log)")
        XCTAssertTrue(client.log.contains("stopped the federation with an error"), client.log)
    }
}
