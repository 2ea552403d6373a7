import FlowerCore
import Foundation
import Testing
@testable import FlowerOps

/// The exposition text names every catalogued metric with its type and help, and moves with events.
struct MetricsExpositionTests {
    @Test func everyServerMetricHasTypeAndHelp() {
        let factory = FlwrMetricsFactory()
        let metrics = ServerMetrics(factory: factory)
        factory.onScrape { metrics.setClientsConnected(3); metrics.setWireTotals(received: 1000, sent: 2000) }
        metrics.start(plannedRounds: 5, completed: 0)
        metrics.roundStarted(round: 1, of: 5, sampled: 3)
        metrics.fitFinished(round: 1, results: 2, failures: [ClientFailure(clientID: "c", kind: .timeout, reason: "late")])
        metrics.roundCompleted(RoundRecord(round: 1, loss: 0.7, accuracy: 0.6, fitClients: 2, failures: 1, seconds: 3,
                                           fitMetrics: ["epsilon": .double(1.5)]), of: 5)
        let text = factory.exposition()
        for m in FlwrMetrics.server {
            #expect(text.contains("# TYPE \(m.name) \(m.kind.rawValue)\n"), "\(m.name) missing in\n\(text)")
            #expect(text.contains("# HELP \(m.name) "), "\(m.name) has no help")
        }
        #expect(text.contains("flwr_rounds_completed_total 1\n"))
        #expect(text.contains("flwr_fit_failures_total{kind=\"timeout\"} 1\n"))
        #expect(text.contains("flwr_fit_failures_total{kind=\"error\"} 0\n"))
        #expect(text.contains("flwr_clients_connected 3"))
        #expect(text.contains("flwr_received_bytes_total 1000\n"))
        #expect(text.contains("flwr_privacy_epsilon{mechanism=\"data\"} 1.5"))
        #expect(text.contains("flwr_round_duration_seconds_count 1\n"))
        // Scraping again must not count the same wire bytes twice.
        #expect(factory.exposition().contains("flwr_received_bytes_total 1000\n"))
    }

    /// DP-FedAvg's ε (the round's `privacy`, from the accountant) is exposed as mechanism dp_fedavg
    /// and moves with the rounds; an infinite ε (no noise) is not exposed.
    @Test func dpFedAvgEpsilonFollowsTheAccountant() {
        let factory = FlwrMetricsFactory()
        let metrics = ServerMetrics(factory: factory)
        metrics.start(plannedRounds: 3, completed: 0)
        metrics.roundCompleted(RoundRecord(round: 1, loss: 0.7, accuracy: 0.6, fitClients: 2, failures: 0, seconds: 1,
                                           privacy: PrivacySpent(epsilon: 0.75, delta: 1e-5)), of: 3)
        #expect(factory.exposition().contains("flwr_privacy_epsilon{mechanism=\"dp_fedavg\"} 0.75"))
        metrics.roundCompleted(RoundRecord(round: 2, loss: 0.6, accuracy: 0.7, fitClients: 2, failures: 0, seconds: 1,
                                           privacy: PrivacySpent(epsilon: 1.25, delta: 1e-5)), of: 3)
        #expect(factory.exposition().contains("flwr_privacy_epsilon{mechanism=\"dp_fedavg\"} 1.25"))
        let none = RoundRecord(round: 3, loss: 0.5, accuracy: 0.8, fitClients: 2, failures: 0, seconds: 1,
                               privacy: PrivacySpent(epsilon: .infinity, delta: 1e-5))
        #expect(RoundEpsilon.values(of: none).isEmpty)
    }

    /// Record-level DP-SGD: the worst site's ε as mechanism dp_sgd, each site's as dp_sgd_site_ID,
    /// and the same in TensorBoard's scalars.
    @Test func dpSGDSiteEpsilonsAreExposed() {
        let factory = FlwrMetricsFactory()
        let metrics = ServerMetrics(factory: factory)
        metrics.start(plannedRounds: 2, completed: 0)
        let record = RoundRecord(round: 1, loss: 0.7, accuracy: 0.6, fitClients: 2, failures: 0, seconds: 1,
                                 siteEpsilon: ["partition-0": 0.5, "partition-1": 2.25])
        metrics.roundCompleted(record, of: 2)
        let text = factory.exposition()
        #expect(text.contains("flwr_privacy_epsilon{mechanism=\"dp_sgd\"} 2.25"), "\(text)")
        #expect(text.contains("flwr_privacy_epsilon{mechanism=\"dp_sgd_site_partition-0\"} 0.5"), "\(text)")
        let tags = TensorBoardWriter.scalars(of: record).map(\.tag)
        #expect(tags.contains("epsilon_dp_sgd") && tags.contains("epsilon_dp_sgd/partition-1"), "\(tags)")
    }
}
