import ArgumentParser
import FlowerRuntime

/// Round-loop flags of `flwr server` only (beside `RoundOptions`, which `flwr simulate` shares).
struct FederationOptions: ParsableArguments {
    @Option(help: "Fewest clients sampled per round, and fewest results a round accepts (default: min(2, --min-clients)).") var minFitClients: Int?
    @Flag(inversion: .prefixedNo, help: "Aggregate a round even when some clients failed (as long as --min-fit-clients results remain).") var acceptFailures = true
    @Option(help: "Times a refused round is retried before the server stops.") var roundAttempts: Int = 1

    /// The library's form of these flags and of `round`'s.
    func settings(_ round: RoundOptions) throws -> FederationSettings {
        try validating {
            try FederationSettings(rounds: round.rounds ?? 10, fractionFit: round.fractionFit ?? 1, minFitClients: minFitClients,
                                   roundTimeout: round.roundTimeout, acceptFailures: acceptFailures, roundAttempts: roundAttempts, seed: round.seed)
        }
    }
}
