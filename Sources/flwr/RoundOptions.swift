import ArgumentParser

/// The round-loop flags `flwr server` and `flwr simulate` both take. Where their defaults differ
/// the option is optional and each command applies its own (`rounds(default:)`, `waitTimeout`).
struct RoundOptions: ParsableArguments {
    @Option(help: "Federated rounds to run (default: 10; simulate: 5).") var rounds: Int?
    @Option(help: "Fraction of connected clients sampled for training each round (default 1).") var fractionFit: Double?
    @Option(help: "Seconds each round waits for clients' results; a client past it counts as a failure.") var roundTimeout: Double = 600
    @Option(help: "Seconds to wait for --min-clients before giving up (default: 600); simulate: seconds the server waits for all --clients to connect before each round; when they do not, the simulation stops with an error (exit code 1) (default: 60).") var waitTimeout: Double?
    @Option(help: "Seed of client sampling and of the initial model (simulate: also of the split and of shuffling).") var seed: UInt64 = 42
    @Option(help: "Evaluate on at most this many test images.") var maxTestExamples: Int?
    @Option(help: "Folder for the checkpoint written after every completed round (simulate --mode async: every server update), atomically (created if missing).") var checkpointDir: String?
    @Flag(help: "Continue from the checkpoint in --checkpoint-dir, if there is one, after its last completed round. simulate: with the same flags and --seed, the same history as an uninterrupted run; --mode async continues after the last server update with the clients that were in flight (each sent its version again, due at its saved arrival) and the sampler's stream where it stopped: the same history as an uninterrupted run on the virtual clock; history.jsonl is rewritten to the checkpoint's rounds first.") var resume = false
}
