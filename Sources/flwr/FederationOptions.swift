import ArgumentParser
import FlowerRuntime

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

    /// The library's form of these flags.
    var settings: FederationSettings {
        var f = FederationSettings()
        f.rounds = rounds; f.fractionFit = fractionFit; f.minFitClients = minFitClients
        f.roundTimeout = .milliseconds(Int64(roundTimeout * 1000)); f.acceptFailures = acceptFailures
        f.roundAttempts = roundAttempts; f.seed = seed
        return f
    }
}
