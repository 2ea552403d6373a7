import ArgumentParser
import FlowerRuntime

/// `flwr simulate --checkpoint-dir DIR [--resume]`: a checkpoint after every round (or server
/// update), and continuing after the last one when a run was stopped or crashed.
struct SimulationCheckpointOptions: ParsableArguments {
    @Option(help: "Folder for the checkpoint written after every completed round (--mode async: every server update), atomically, as flwr server writes it (created if missing).")
    var checkpointDir: String?

    @Flag(help: "Continue from the checkpoint in --checkpoint-dir, if there is one: after its last completed round (sync: with the same flags and --seed, the same history as an uninterrupted run) or server update (async: the buffer and the clients in flight are not saved; --concurrency clients start on the checkpointed version at its virtual time). history.jsonl is rewritten to the checkpoint's rounds first.")
    var resume = false

    func validate() throws {
        if let problem = SimulationConfig.checkpointProblem(checkpointDir: checkpointDir, resume: resume) {
            throw ValidationError(problem)
        }
    }

    /// Copies these flags into the simulation's configuration.
    func apply(to c: inout SimulationConfig) {
        c.checkpointDir = checkpointDir
        c.resume = resume
    }
}
