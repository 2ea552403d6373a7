import TestSupport
import FedAvg
import FlowerCore
import Foundation
import Strategies
import XCTest

/// Peak memory of one round's aggregation at 100 clients with the reference CNN's size (390,410
/// float32 values, 1.56 MB): the streaming strategies hold one running sum, the order-statistic
/// ones every update. Measured as the growth of the process's peak RSS (VmHWM, reset through
/// /proc/self/clear_refs before each strategy). Prints one line per strategy (BENCHMARKS.md,
/// "Strategies and attacks"): `swift test -c release --filter AggregationMemoryReleaseTests`.
final class AggregationMemoryReleaseTests: XCTestCase {
    static let modelSize = 390_410
    static let clients = 100
    /// Set in the child process that does the measuring.
    static let childVariable = "FLWR_AGGREGATION_MEMORY_CHILD"

    override func setUpWithError() throws {
        #if DEBUG
        throw XCTSkip("release-only: run swift test -c release --filter ReleaseTests")
        #endif
    }

    /// VmHWM and VmRSS of this process, in bytes.
    private func memory() -> (peak: Int, now: Int) {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        func field(_ name: String) -> Int {
            let line = status.split(separator: "\n").first { $0.hasPrefix(name + ":") } ?? ""
            return (Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0) * 1024
        }
        return (field("VmHWM"), field("VmRSS"))
    }

    private func resetPeak() {
        FileManager.default.createFile(atPath: "/proc/self/clear_refs", contents: Data("5".utf8))
    }

    /// Runs each strategy's measurement in a fresh process of this test binary: in the shared
    /// release-test process, earlier tests leave wire servers' buffers, threads and glibc
    /// thresholds behind (`WireMemory.retainLargeBuffers`), and the peak RSS then stops following
    /// this aggregation alone (fedavg measured +53 to +105 models there, +3 in a process of its
    /// own); and within one process, a strategy measured after an order-statistic one reuses the
    /// pages that one freed, so its buffering no longer raises the peak (krum +0.1 MB, seen).
    func testOrderStatisticStrategiesBufferTheRoundAndStreamingOnesDoNot() throws {
        if let name = ProcessInfo.processInfo.environment[Self.childVariable] { return try measure(name) }
        let modelMB = Double(4 * Self.modelSize) / 1e6
        var growth: [String: Double] = [:]
        for name in Self.strategyNames {
            let run = try runProgram(CommandLine.arguments[0],
                                     ["StrategiesTests.AggregationMemoryReleaseTests/testOrderStatisticStrategiesBufferTheRoundAndStreamingOnesDoNot"],
                                     environment: ProcessInfo.processInfo.environment.merging([Self.childVariable: name]) { $1 })
            let output = run.output
            XCTAssertEqual(run.status, 0, output)
            guard let line = output.split(separator: "\n").first(where: { $0.hasPrefix("aggregation memory: \(name) ") }) else {
                XCTFail("no measurement for \(name) in:\n\(output)")
                continue
            }
            print(line)
            // "... peak +NNN MB (...)"
            let grew = line.split(separator: "+").dropFirst().first.flatMap { Double($0.split(separator: " ").first ?? "") }
            growth[name] = try XCTUnwrap(grew, "unparsable: \(line)")
        }
        // Streaming: a running sum in Double (2 models) plus the update in hand, whatever the count.
        XCTAssertLessThan(try XCTUnwrap(growth["fedavg"]), 10 * modelMB)
        // Buffered: at least the 100 updates.
        for name in ["fedmedian", "krum", "bulyan"] {
            XCTAssertGreaterThan(try XCTUnwrap(growth[name]), 0.9 * Double(Self.clients) * modelMB, name)
        }
    }

    static let strategyNames = ["fedavg", "fedadam", "fedmedian", "fedtrimmedavg", "krum", "multikrum", "bulyan"]

    private func measure(_ only: String) throws {
        let global = try Parameters(shapes: [("w", [Self.modelSize])], values: [Float](repeating: 0, count: Self.modelSize))
        // The updates arrive one at a time and are dropped by the caller after `add`, as answers
        // leave the wire: each is generated just before it is added.
        func update(_ k: Int) -> FitRes {
            var p = global
            p.values.withUnsafeMutableBufferPointer { b in
                for i in 0 ..< b.count { b[i] = Float((i &* 31 &+ k &* 17) % 1000) * 1e-3 - 0.5 }
            }
            return FitRes(round: 1, parameters: p, numExamples: 100 + k)
        }
        let base = FedAvg(minFitClients: 1)
        let strategies: [(String, any Strategy)] = [
            ("fedavg", base),
            ("fedadam", FedAdam(base: base)),
            ("fedmedian", FedMedian(base: base)),
            ("fedtrimmedavg", FedTrimmedAvg(base: base, beta: 0.2)),
            ("krum", Krum(base: base, numMaliciousClients: 10)),
            ("multikrum", MultiKrum(base: base, numMaliciousClients: 10, numClientsToKeep: 50)),
            ("bulyan", Bulyan(base: base, numMaliciousClients: 10)),
        ]
        let modelMB = Double(4 * Self.modelSize) / 1e6
        for (name, strategy) in strategies where name == only {
            resetPeak()
            let before = memory().now
            let start = ContinuousClock.now
            var agg = strategy.makeFitAggregator(FitRoundContext(round: 1, parameters: global))
            for k in 0 ..< Self.clients { try agg.add(update(k), from: StubClient("c\(k)")) }
            let out = try agg.finish(failures: [])
            let elapsed = start.duration(to: .now)
            XCTAssertEqual(out.parameters.count, Self.modelSize)
            let grew = Double(memory().peak - before) / 1e6
            print(String(format: "aggregation memory: %@ at %d clients × %.2f MB: peak +%.0f MB (%.1f models), %.2f s",
                         name, Self.clients, modelMB, grew, grew / modelMB,
                         Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18))
        }
    }
}
