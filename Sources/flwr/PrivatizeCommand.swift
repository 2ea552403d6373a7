// `flwr privatize`: the standalone job (kubeFlower ran its noising as a Kubernetes Job writing a
// volume) that writes one client's Laplace-privatised partition as DIR/partition.npz and charges
// the privacy ledger; and `PrivacyOptions`, the DP flags `flwr client` / `flwr train` share to
// privatise on the fly (`privacyOptions.request(...)` then CIFARLoader's `privatize(_:request:)`).
import ArgumentParser
import CIFARLoader
import FlowerRuntime
import Foundation

/// The DP flags of a release; all optional so commands can train without DP.
struct PrivacyOptions: ParsableArguments {
    @Option(help: "Privacy parameter ε of the Laplace noise added to every pixel before training (smaller: more private, noisier). Omit for no noise.") var dpEpsilon: Double?
    @Option(help: ArgumentHelp("What ε protects: pixel or image.", discussion: "\(LaplaceDP.Unit.pixel.guarantee) \(LaplaceDP.Unit.image.guarantee)")) var dpUnit: String = "pixel"
    @Option(help: "Total ε the ledger allows on this data across releases (default: --dp-epsilon, one release); a release past it is refused.") var privacyBudget: Double?
    @Option(help: "Seed of the noise (default: a fresh one from the system's secure source). Anyone who knows it can remove the noise; with a fixed seed a re-run re-creates the same release without spending more ε.") var dpSeed: UInt64?
    @Option(help: "Folder of the privacy ledger (privacy-ledger.json) that records every release (default: the output folder).") var ledgerDir: String?

    /// The library's form of these flags.
    func settings() throws -> DataPrivacy {
        DataPrivacy(epsilon: dpEpsilon, unit: try LaplaceDP.Unit.parse(dpUnit), budget: privacyBudget, seed: dpSeed,
                    ledgerDirectory: ledgerDir)
    }

    func validate() throws { try validating { try settings().validate() } }
}

/// `flwr privatize`: write a client's noised partition as DIR/partition.npz.
struct PrivatizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "privatize",
        abstract: "Write one client's partition with Laplace noise as DIR/partition.npz, charging a privacy ledger.",
        discussion: """
            Each pixel is clipped to [0, 1], gets independent Laplace(0, Δ/ε) noise and is clipped \
            again (post-processing). Guarantees: \(LaplaceDP.Unit.pixel.guarantee) \
            \(LaplaceDP.Unit.image.guarantee) Warning: per-image noise at ε ≤ 10 on 784-pixel images \
            is far larger than the pixels themselves; expect chance accuracy. \
            The ledger (privacy-ledger.json) records ε, unit, seed, data fingerprint and time of \
            every release and refuses one that would exceed --privacy-budget; it holds the noise \
            seeds, so keep it as private as the raw data. Train on the result with \
            `--dataset npz --data-dir DIR`: reusing a release spends nothing more.
            """)

    @OptionGroup var data: DataOptions
    @OptionGroup var privacy: PrivacyOptions
    @Option(help: "Which partition (client) to release, 0-based. With none of --partition, --num-partitions, --alpha the whole of --data-dir is released (a site's own data).") var partition: Int?
    @Flag(help: "Without --dp-seed: when the ledger already records a release of this very data at this ε and unit, re-create that release (its recorded seed) instead of drawing new noise, spending nothing more. For an init container that runs again after a pod restart.") var resume = false
    @Option(help: "Output folder (created if missing): partition.npz (float32 images N×C×H×W, int64 labels) is written there.") var out: String
    @Flag(help: "Also write the dataset's test set, un-noised, as DIR/test.npz (when it has one), for the client's evaluation.") var includeTest = false

    func validate() throws { try validating { try config().validate(asksForSplit: data.asksForSplit) } }

    func run() throws { for line in try PrivateRelease(config: try config()).run() { print(line) } }

    /// The library's form of these flags.
    func config() throws -> PrivateReleaseConfig {
        var c = PrivateReleaseConfig(dataset: try data.source.location(), privacy: try privacy.settings(), out: out)
        c.partition = partition; c.numPartitions = data.numPartitions; c.scheme = try data.scheme(); c.seed = data.seed
        c.resume = resume; c.includeTest = includeTest
        return c
    }
}
