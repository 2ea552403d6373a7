import ArgumentParser
import FedAvg
import FlowerCore

/// Round-loop flags shared by `flwr server` and `flwr simulate`.
struct FederationOptions: ParsableArguments {
    @Option(help: "Federated rounds to run.")
    var rounds: Int = 10

    @Option(help: "Fraction of connected clients sampled for training each round.")
    var fractionFit: Double = 1.0

    @Option(help: "Fewest clients sampled per round, and fewest results a round accepts (default: min(2, --min-clients)).")
    var minFitClients: Int?

    @Option(help: "Seconds each round waits for clients' results; a client past it counts as a failure.")
    var roundTimeout: Double = 600

    @Flag(inversion: .prefixedNo, help: "Aggregate a round even when some clients failed (as long as --min-fit-clients results remain).")
    var acceptFailures = true

    @Option(help: "Times a refused round is retried before the server stops.")
    var roundAttempts: Int = 1

    @Option(help: "Seed of client sampling and of the initial model.")
    var seed: UInt64 = 42

    func validate() throws {
        guard rounds >= 1 else { throw ValidationError("--rounds must be at least 1, got \(rounds)") }
        guard fractionFit > 0 && fractionFit <= 1 else { throw ValidationError("--fraction-fit must be in (0, 1], got \(fractionFit)") }
        if let m = minFitClients, m < 1 { throw ValidationError("--min-fit-clients must be at least 1, got \(m)") }
        guard roundTimeout > 0 else { throw ValidationError("--round-timeout must be positive seconds, got \(roundTimeout)") }
        guard roundAttempts >= 1 else { throw ValidationError("--round-attempts must be at least 1, got \(roundAttempts)") }
    }

    /// The round deadline.
    var timeout: Duration { .milliseconds(Int64(roundTimeout * 1000)) }

    /// FedAvg configured from these flags for `minClients` connected clients.
    func strategy(minClients: Int, initialParameters: Parameters?, fitConfig: Config,
                  evaluateFn: CentralEvaluateFn?) -> FedAvg {
        makeFedAvg(fractionFit: fractionFit, minFitClients: minFitClients, acceptFailures: acceptFailures, seed: seed,
                   minClients: minClients, initialParameters: initialParameters, fitConfig: fitConfig,
                   evaluateFn: evaluateFn)
    }
}

/// Central evaluation: (round, parameters) → (loss, metrics with "accuracy").
typealias CentralEvaluateFn = @Sendable (Int, Parameters) async throws -> (loss: Double, metrics: Metrics)?

/// FedAvg over `minClients` clients: federated evaluation on the clients only when the server
/// has no central evaluation; `minFitClients` defaults to min(2, minClients).
func makeFedAvg(fractionFit: Double, minFitClients: Int?, acceptFailures: Bool, seed: UInt64, minClients: Int,
                initialParameters: Parameters?, fitConfig: Config, evaluateFn: CentralEvaluateFn?) -> FedAvg {
    let minFit = minFitClients ?? min(2, minClients)
    return FedAvg(fractionFit: fractionFit, fractionEvaluate: evaluateFn == nil ? 1 : 0,
                  minFitClients: minFit, minEvaluateClients: evaluateFn == nil ? minFit : 0,
                  minAvailableClients: minClients, acceptFailures: acceptFailures, seed: seed,
                  initialParameters: initialParameters, onFitConfig: { _ in fitConfig },
                  evaluateFn: evaluateFn)
}
