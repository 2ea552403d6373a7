// Every metric flwr exposes on /metrics: name, type, help text (the `# HELP` line) and, for
// histograms, buckets. The README's "Operating flwr" section describes the same list; names follow
// Prometheus conventions (`flwr_` prefix, `_total` for counters, base units: seconds, bytes, ratios).

/// The kind of a Prometheus metric family.
public enum MetricKind: String, Sendable {
    case counter, gauge, histogram
}

/// One metric family flwr exposes.
public struct MetricInfo: Sendable {
    /// Full Prometheus name, e.g. `flwr_rounds_completed_total`.
    public let name: String
    /// Counter, gauge or histogram.
    public let kind: MetricKind
    /// One line saying what it measures (the `# HELP` text).
    public let help: String
    /// Label names the family uses (empty: one unlabelled series).
    public let labels: [String]
    /// Upper bounds of the buckets (histograms only), in the metric's unit.
    public let buckets: [Double]

    init(_ name: String, _ kind: MetricKind, _ help: String, labels: [String] = [], buckets: [Double] = []) {
        self.name = name
        self.kind = kind
        self.help = help
        self.labels = labels
        self.buckets = buckets
    }
}

/// The catalogue of flwr's metrics.
public enum FlwrMetrics {
    /// Round durations range from under a second (tiny models) to many minutes.
    static let roundBuckets: [Double] = [0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800]
    /// One client's local training: a fraction of a second to tens of minutes.
    static let fitBuckets: [Double] = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600]

    // MARK: server
    public static let roundsCompleted = MetricInfo("flwr_rounds_completed_total", .counter,
        "Federated rounds completed by this server process (aggregated, evaluated and recorded).")
    public static let currentRound = MetricInfo("flwr_current_round", .gauge,
        "The round in progress, or the last completed one between rounds (0 before the first).")
    public static let plannedRounds = MetricInfo("flwr_rounds_planned", .gauge,
        "Rounds this run is configured to train (--rounds).")
    public static let roundDuration = MetricInfo("flwr_round_duration_seconds", .histogram,
        "Wall time of each completed round, sampling to recorded history, in seconds.", buckets: roundBuckets)
    public static let clientsConnected = MetricInfo("flwr_clients_connected", .gauge,
        "Clients connected and registered now (handshake completed).")
    public static let fitResults = MetricInfo("flwr_fit_results_total", .counter,
        "Fit answers accepted into an aggregation.")
    public static let fitFailures = MetricInfo("flwr_fit_failures_total", .counter,
        "Fit calls lost, by kind: error (disconnect, malformed), timeout, status (client reported failure), rejected (update refused).",
        labels: ["kind"])
    public static let evaluateResults = MetricInfo("flwr_evaluate_results_total", .counter,
        "Federated evaluate answers accepted.")
    public static let evaluateFailures = MetricInfo("flwr_evaluate_failures_total", .counter,
        "Federated evaluate calls lost, by kind (as flwr_fit_failures_total).", labels: ["kind"])
    public static let receivedBytes = MetricInfo("flwr_received_bytes_total", .counter,
        "Bytes received on the wire from clients (frame headers included).")
    public static let sentBytes = MetricInfo("flwr_sent_bytes_total", .counter,
        "Bytes sent on the wire to clients (frame headers included).")
    public static let loss = MetricInfo("flwr_loss", .gauge,
        "Loss of the global model after the last completed round (central evaluation, else federated).")
    public static let accuracy = MetricInfo("flwr_accuracy_ratio", .gauge,
        "Accuracy (0 to 1) of the global model after the last completed round (central, else federated).")
    public static let epsilon = MetricInfo("flwr_privacy_epsilon", .gauge,
        "Differential-privacy epsilon spent, by mechanism: data (Laplace noise on client data, as clients report it), dp_fedavg (the strategy's accountant), dp_sgd (the largest record-level epsilon any site reported).",
        labels: ["mechanism"])

    // MARK: client
    public static let clientConnected = MetricInfo("flwr_client_connected", .gauge,
        "1 while this client is connected to the server and registered, else 0.")
    public static let clientFitDuration = MetricInfo("flwr_client_fit_duration_seconds", .histogram,
        "Wall time of each local training (fit) on this client, in seconds.", buckets: fitBuckets)
    public static let clientFits = MetricInfo("flwr_client_fits_total", .counter,
        "Fit instructions this client completed successfully.")
    public static let clientFitFailures = MetricInfo("flwr_client_fit_failures_total", .counter,
        "Fit instructions that failed on this client (the server counts them as status failures).")
    public static let clientEvaluations = MetricInfo("flwr_client_evaluations_total", .counter,
        "Evaluate instructions this client answered.")
    public static let clientExamplesTrained = MetricInfo("flwr_client_examples_trained_total", .counter,
        "Training examples processed by this client: examples in each fit times its epochs.")
    public static let clientImagesPerSecond = MetricInfo("flwr_client_images_per_second", .gauge,
        "Training throughput of the last fit: examples times epochs over its wall time.")
    public static let clientEpsilon = MetricInfo("flwr_client_privacy_epsilon", .gauge,
        "Epsilon of the Laplace noise released on this client's training data (--dp-epsilon).")

    /// The families a server exposes.
    public static let server: [MetricInfo] = [
        roundsCompleted, currentRound, plannedRounds, roundDuration, clientsConnected, fitResults, fitFailures,
        evaluateResults, evaluateFailures, receivedBytes, sentBytes, loss, accuracy, epsilon,
    ]
    /// The families a client exposes.
    public static let client: [MetricInfo] = [
        clientConnected, clientFitDuration, clientFits, clientFitFailures, clientEvaluations,
        clientExamplesTrained, clientImagesPerSecond, clientEpsilon,
    ]
    /// Every family by name.
    static let byName: [String: MetricInfo] = Dictionary((server + client).map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
}
