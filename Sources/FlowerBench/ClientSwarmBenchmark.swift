// The load test (`flwr bench clients`): thousands of handshaken FlowerWire clients against a
// server, kept idle (answering any instruction like an echo client), and what they cost.
import FlowerRuntime
import FlowerTLS
import FlowerWire
import WireLoadTest
import Foundation
import Logging

/// Loads a FlowerWire server with many idle clients; one JSON line when the handshakes are done,
/// one when the clients end (BENCHMARKS.md, "Wire at scale").
public struct ClientSwarmBenchmark: Sendable {
    /// The clients to open (host, port, count, concurrency, processing, identity prefix, token).
    public let config: LoadClientsConfig
    /// Seconds to keep the clients after the handshakes (0: until every client got Finish, or SIGTERM).
    public let hold: Double

    public init(config: LoadClientsConfig, hold: Double) {
        self.config = config
        self.hold = hold
    }

    /// Opens the clients, reports, holds them, reports again.
    public func run() async throws {
        var logger = Logger(label: "flwr.bench.clients")
        logger.logLevel = .warning
        let clients = config.count
        let (before, after) = DescriptorLimit.raiseToHard()
        if after < UInt64(clients) + 64 {
            throw BenchError("the open-file limit is \(after) (hard); \(clients) clients need more: raise it (ulimit -Hn) or open fewer")
        }
        var load = config
        load.mac = CryptoHandshakeMAC()
        let started = Date()
        let swarm = await LoadClients.open(load, logger: logger)
        let (failed, first) = swarm.failureSummary
        emit(JSONLines.line(["bench": "clients", "phase": "connected", "clients": swarm.connected, "failed": failed,
                    "seconds": Date().timeIntervalSince(started), "nofile_before": before, "nofile_after": after,
                    "peak_rss_mb": peakRSSMegabytes()]))
        for f in first.prefix(5) { FileHandle.standardError.write(Data("handshake failed: \(f)\n".utf8)) }
        let outcome = await runUntilSignal { () async throws -> Bool in
            if hold > 0 {
                try await Task.sleep(for: .milliseconds(Int64(hold * 1000)))
                return true
            }
            return await swarm.waitUntilEnded(timeout: .seconds(86_400))
        }
        await swarm.close()
        var ending = "hold"
        if case .signalled(let name) = outcome { ending = name } else if hold == 0 { ending = "finished" }
        emit(JSONLines.line(["bench": "clients", "phase": "ended", "by": ending, "fits": swarm.fits, "evaluations": swarm.evaluations,
                    "finished": swarm.finished, "seconds": Date().timeIntervalSince(started), "peak_rss_mb": peakRSSMegabytes()]))
        if failed > 0 { throw ExitMessage(error: BenchError("\(failed) of \(clients) handshakes failed, first: \(first.first ?? "")")) }
    }
}

/// Writes one line to stdout unbuffered (scripts wait for the "connected" line while the clients
/// stay connected; `print` into a pipe or file would hold it in a buffer).
private func emit(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
