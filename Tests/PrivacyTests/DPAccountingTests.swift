// The accountant against Google's dp-accounting (pip `dp-accounting==0.6.0`, installed by
// scripts/test-peers), on a grid of sampling rates, noise multipliers, rounds and δ.
import Foundation
import Testing
@testable import Privacy

/// Runs `python3 -c script` with `input` on stdin; returns stdout, or the error output on failure.
func runPython(_ script: String, input: String = "") throws -> (status: Int32, out: String, err: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["python3", "-c", script]
    let inPipe = Pipe(), outPipe = Pipe()
    let errFile = FileManager.default.temporaryDirectory.appendingPathComponent("privacy-py-\(UUID().uuidString).err")
    _ = FileManager.default.createFile(atPath: errFile.path, contents: nil)
    defer { try? FileManager.default.removeItem(at: errFile) }
    p.standardInput = inPipe
    p.standardOutput = outPipe
    p.standardError = try FileHandle(forWritingTo: errFile)
    try p.run()
    inPipe.fileHandleForWriting.write(Data(input.utf8))
    try inPipe.fileHandleForWriting.close()
    let out = String(decoding: outPipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    p.waitUntilExit()
    let err = (try? String(contentsOf: errFile, encoding: .utf8)) ?? ""
    return (p.terminationStatus, out, err)
}

/// Fails the calling test, naming the fix, when `import dp_accounting` does not work.
func requireDPAccounting() throws {
    let probe = try runPython("import dp_accounting")
    #expect(probe.status == 0, "dp_accounting 0.6.0 is not importable (\(probe.err)): run scripts/test-peers")
}

@Suite("RDP accountant against dp-accounting 0.6.0")
struct DPAccountingTests {
    /// (q, z) pairs: DP-FedAvg's regime (10–100 clients, z 0.3–1) and DP-SGD's (small q).
    static let grid: [(q: Double, z: Double)] = [
        (1.0, 0.5), (1.0, 1.0), (0.5, 0.3), (0.5, 1.0), (0.1, 0.3), (0.1, 0.5), (0.1, 1.1),
        (0.3, 0.7), (0.01, 2.5), (0.004, 1.1), (0.001, 0.8),
    ]
    static let rounds = [1, 10, 100, 1000]
    static let deltas = [1e-5, 1e-3]

    @Test func rdpAndEpsilonMatch() throws {
        try requireDPAccounting()
        let script = """
        import json, sys, warnings, logging
        logging.disable(logging.WARNING)
        import dp_accounting
        from dp_accounting.rdp import rdp_privacy_accountant as rdp
        cases = json.load(sys.stdin)
        out = []
        for c in cases:
            acc = rdp.RdpAccountant(orders=rdp.DEFAULT_RDP_ORDERS)
            event = dp_accounting.SelfComposedDpEvent(
                dp_accounting.PoissonSampledDpEvent(c["q"], dp_accounting.GaussianDpEvent(c["z"])), c["t"])
            acc.compose(event)
            eps, order = acc.get_epsilon_and_optimal_order(c["delta"])
            out.append({"rdp": [r if r != float("inf") else None for r in acc._rdp.tolist()],
                        "epsilon": eps, "order": float(order)})
        print(json.dumps(out))
        """
        var cases: [[String: Double]] = []
        for (q, z) in Self.grid { for t in Self.rounds { for d in Self.deltas {
            cases.append(["q": q, "z": z, "t": Double(t), "delta": d])
        } } }
        var input = "["
        input += cases.map { c in
            "{\"q\": \(c["q"]!), \"z\": \(c["z"]!), \"t\": \(Int(c["t"]!)), \"delta\": \(c["delta"]!)}"
        }.joined(separator: ",")
        input += "]"
        let result = try runPython(script, input: input)
        try #require(result.status == 0, "dp-accounting script failed: \(result.err)")
        struct Row: Decodable { let rdp: [Double?]; let epsilon: Double; let order: Double }
        let rows = try JSONDecoder().decode([Row].self, from: Data(result.out.utf8))
        try #require(rows.count == cases.count)
        for (c, row) in zip(cases, rows) {
            let q = c["q"]!, z = c["z"]!, t = Int(c["t"]!), delta = c["delta"]!
            var account = RDPAccountant()
            try account.compose(samplingRate: q, noiseMultiplier: z, count: t)
            for (i, (ours, theirs)) in zip(account.rdp, row.rdp).enumerated() {
                guard let theirs else {
                    #expect(ours == .infinity, "q=\(q) z=\(z) T=\(t) order \(account.orders[i]): dp-accounting inf, ours \(ours)")
                    continue
                }
                #expect(abs(ours - theirs) <= 1e-9 * abs(theirs) + 1e-15,
                        "q=\(q) z=\(z) T=\(t) order \(account.orders[i]): ours \(ours), dp-accounting \(theirs)")
            }
            let (eps, order) = try account.epsilon(delta: delta)
            #expect(abs(eps - row.epsilon) <= 1e-9 * max(1, row.epsilon),
                    "q=\(q) z=\(z) T=\(t) δ=\(delta): ε ours \(eps), dp-accounting \(row.epsilon)")
            #expect(order == row.order, "q=\(q) z=\(z) T=\(t) δ=\(delta): order ours \(order), dp-accounting \(row.order)")
        }
    }
}
