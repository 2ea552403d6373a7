// Record-level DP-SGD sites report their ε as the fit metric `dp_sgd_epsilon`: the server keeps
// it per site in the round record, history.jsonl and its log line, and names the worst site.
import FedAvg
import FlowerCore
import TestSupport
import Foundation
import Testing

struct SiteEpsilonTests {
    @Test func jsonLineAndWorstSite() {
        let r = RoundRecord(round: 2, loss: 0.5, accuracy: 0.8, fitClients: 2, failures: 1, seconds: 1,
                            siteEpsilon: ["partition-1": 1.25, "partition-0": 2.5])
        #expect(r.jsonLine.hasSuffix(#","site_epsilon":{"partition-0":2.5,"partition-1":1.25}}"#), "\(r.jsonLine)")
        #expect(r.worstSiteEpsilon?.site == "partition-0" && r.worstSiteEpsilon?.epsilon == 2.5)
        let history = History(rounds: [RoundRecord(round: 1, loss: nil, accuracy: nil, fitClients: 1, failures: 0, seconds: 1,
                                                   siteEpsilon: ["partition-0": 1.5]), r])
        #expect(history.worstSiteEpsilonSummary == "record-level DP-SGD: worst site partition-0 at epsilon 2.5 (round 2)")
        #expect(History(rounds: [RoundRecord(round: 1, loss: nil, accuracy: nil, fitClients: 1, failures: 0, seconds: 1)])
            .worstSiteEpsilonSummary == nil)
    }

    @Test func serverRecordsEachAnsweringSitesEpsilon() async throws {
        let m = InMemoryClientManager()
        for (id, eps) in [("a", 0.5), ("b", 1.5)] {
            _ = m.register(FakeClient(id, onFit: { ins, _ in
                FitRes(round: ins.round, parameters: ins.parameters, numExamples: 1,
                       metrics: [siteEpsilonMetricKey: .double(eps * Double(ins.round))])
            }))
        }
        _ = m.register(adder("c", delta: [0, 0, 0], numExamples: 1))   // no DP-SGD: no entry
        let logs = LogCapture()
        let summary = try await Server(clientManager: m, strategy: FedAvg(initialParameters: try model([0, 0, 0])),
                                       logger: logs.logger).fit(numRounds: 2, timeout: .seconds(30))
        #expect(summary.history.rounds.map(\.siteEpsilon) == [["a": 0.5, "b": 1.5], ["a": 1.0, "b": 3.0]])
        #expect(logs.contains("DP-SGD ε per site: a 1.0000, b 3.0000"))
        #expect(summary.history.worstSiteEpsilonSummary == "record-level DP-SGD: worst site b at epsilon 3 (round 2)")
    }
}
