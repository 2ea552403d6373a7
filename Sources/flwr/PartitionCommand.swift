// `flwr partition`: shows how a dataset splits among clients (a per-partition label histogram),
// and `DataOptions`, the data flags `flwr privatize`, `flwr client` and `flwr train` share.
import ArgumentParser
import CIFARLoader
import FlowerRuntime

/// The flags that choose a dataset: `--dataset` and `--data-dir` (train, simulate, and through
/// `DataOptions` partition, privatize and client).
struct DatasetSource: ParsableArguments {
    @Option(help: "Dataset: fashion-mnist, mnist, cifar10, npz (a folder written by `flwr privatize --out`, or --data-file F.npz), or csv (--data-file F.csv --label-column NAME).") var dataset: String = "fashion-mnist"
    @Option(help: "Folder holding the dataset files (default: /usr/share/datasets/<dataset>; Fashion-MNIST there comes from Debian's dataset-fashion-mnist).") var dataDir: String?
    @OptionGroup var fileOptions: DataFileOptions

    /// The parsed dataset kind.
    func kind() throws -> DatasetKind { try DatasetKind.parse(dataset) }

    /// The library's form of these flags.
    func location() throws -> DatasetLocation { DatasetLocation(kind: try kind(), dataDir: dataDir, files: fileOptions.files) }

    func validate() throws { _ = try validating { try kind() } }
}

/// The flags that choose a dataset and a client's partition of it.
struct DataOptions: ParsableArguments {
    @OptionGroup var source: DatasetSource
    @Option(name: .customLong("num-partitions"), help: "Number of partitions (clients) the training set is split into (default 10). A client given none of --partition, --num-partitions, --alpha trains on the whole of --data-dir (its own data).") var numPartitionsFlag: Int?

    /// --num-partitions, 10 when not given.
    var numPartitions: Int { numPartitionsFlag ?? 10 }

    /// Whether a flag that asks for a split (--num-partitions, --alpha) was given.
    var asksForSplit: Bool { numPartitionsFlag != nil || alpha != nil }

    @Option(help: "Dirichlet concentration α for non-IID label skew (0.1 very skewed, 1000 nearly IID); omit for an IID split.") var alpha: Double?
    @Option(help: ArgumentHelp("Sizes of an IID split: equal (they differ by at most one) or lognormal:σ (drawn lognormal from --seed with log-scale σ, e.g. lognormal:1, as real devices hold unequal amounts of data; every partition keeps at least one example). IID only: with --alpha the Dirichlet draw sets both the labels and the sizes.", valueName: "equal|lognormal:σ")) var partitionSizes: String = "equal"
    @Option(help: "Smallest partition the Dirichlet split accepts; it re-draws (up to 100 times) until every partition has this many samples.") var minPartitionSize: Int = 10
    @Option(help: "Seed of the split: every client computes the same partitions from the same seed.") var seed: UInt64 = 42

    /// IID (sized by --partition-sizes) without --alpha, Dirichlet with it.
    func scheme() throws -> Partitioner {
        try validating { try Partitioner(numPartitions: numPartitions, alpha: alpha, minPartitionSize: minPartitionSize, partitionSizes: partitionSizes) }
    }

    func validate() throws { _ = try scheme() }
}

/// `flwr partition`: print the label histogram of every partition.
struct PartitionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "partition",
        abstract: "Show how a dataset splits among clients: a label histogram per partition.",
        discussion: """
            Up to 50 partitions it prints one row per partition; above, a summary (sizes, classes \
            per partition, the largest class's share: min, median, mean, max) unless --all. \
            Without --alpha the split is IID (a seeded shuffle cut into equal parts). With --alpha it \
            is the Dirichlet/LDA label skew of Hsu et al. 2019 and Yurochkin et al. 2019: for each \
            class, proportions over the partitions are drawn from Dir(α). Every client computes the \
            same split from the same labels, --num-partitions, --alpha and --seed. The Dirichlet \
            draws reproduce numpy's default_rng(seed), so the split is the one Flower Datasets' \
            DirichletPartitioner(num_partitions, partition_by="label", alpha, min_partition_size, \
            seed) makes, member for member.
            """)

    @OptionGroup var data: DataOptions
    @Flag(help: "Print one row per partition even above \(PartitionListing.rowLimit) partitions (where a summary is printed instead).") var all = false
    @Option(help: "Also write the split as a numpy .npz: arrays p0, p1, … of training-set indices (int64, ascending), one per partition, for use in other tools.") var indicesOut: String?

    func run() throws {
        var listing = PartitionListing(dataset: try data.source.location(), numPartitions: data.numPartitions,
                                       scheme: try data.scheme(), seed: data.seed)
        listing.all = all; listing.indicesOut = indicesOut
        try listing.run { print($0) }
    }
}
