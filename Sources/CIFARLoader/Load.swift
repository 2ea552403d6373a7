// Load: one entry point from a dataset name and an optional folder to train and test sets.

/// The datasets `--dataset` accepts.
public enum DatasetKind: String, CaseIterable, Sendable {
    /// Fashion-MNIST (Xiao et al. 2017): 1×28×28, 10 classes, IDX files.
    case fashionMNIST = "fashion-mnist"
    /// MNIST (LeCun et al. 1998): 1×28×28, 10 classes, IDX files.
    case mnist = "mnist"
    /// CIFAR-10 (Krizhevsky 2009): 3×32×32, 10 classes, binary batches.
    case cifar10 = "cifar10"
    /// Numpy arrays: DIR/partition.npz from `flwr privatize` (and DIR/test.npz if present), or
    /// any --data-file F.npz holding `images` (N×C×H×W or N×H×W) or `features` (N×F) and `labels`.
    case npz = "npz"
    /// A CSV file of numeric features and a label column (--data-file, --label-column).
    case csv = "csv"

    /// Parses "fashion-mnist" | "mnist" | "cifar10" | "npz" | "csv"; anything else is an error listing them.
    public static func parse(_ text: String) throws -> DatasetKind {
        let lowered = text.lowercased()
        let aliases: [String: DatasetKind] = ["fashion_mnist": .fashionMNIST, "fmnist": .fashionMNIST,
                                              "cifar-10": .cifar10, "cifar_10": .cifar10]
        if let kind = DatasetKind(rawValue: lowered) ?? aliases[lowered] { return kind }
        throw LoaderError.unknownChoice(what: "dataset", value: text, choices: allCases.map(\.rawValue))
    }

    /// The folder looked in when no `--data-dir` is given.
    public var defaultDirectory: String? {
        switch self {
        case .fashionMNIST: return "/usr/share/datasets/fashion-mnist"
        case .mnist: return "/usr/share/datasets/mnist"
        case .cifar10: return "/usr/share/datasets/cifar10"
        case .npz, .csv: return nil
        }
    }
}

/// Name of the training file in an npz release folder.
public let npzPartitionFile = "partition.npz"
/// Name of the optional test file in an npz release folder.
public let npzTestFile = "test.npz"

/// Loads train and test sets of `kind` from `dataDir` (nil: the kind's default folder; for
/// Fashion-MNIST /usr/share/datasets/fashion-mnist as installed by Debian's dataset-fashion-mnist).
/// For `.npz`, DIR/partition.npz is the training set and DIR/test.npz, if present, the test set
/// (otherwise the test set is empty); with `files.dataFile`, that file (and `files.testFile`).
/// `.csv` reads `files` (see `Tabular`), or the CSV in `dataDir` (`DataFiles.locatingCSV`). Pixels stay raw bytes until `images(at:)` converts them;
/// tabular features (CSV, or an npz `features` array) are standardised as `Tabular` describes.
public func loadDataset(_ kind: DatasetKind, dataDir: String?, files: DataFiles = DataFiles()) throws -> DatasetSplit {
    if kind == .csv { return try Tabular.load(files.locatingCSV(in: dataDir)) }
    if kind == .npz, let file = files.dataFile {
        let train = try NPZ.readDataset(file)
        var test: Dataset
        if let testFile = files.testFile {
            test = try NPZ.readDataset(testFile)
            guard test.inputKind == train.inputKind, test.imageSize == train.imageSize,
                  test.inputKind == .features || (test.channels, test.height, test.width) == (train.channels, train.height, train.width) else {
                throw LoaderError.malformed(path: testFile, detail: "its samples (\(test.channels)×\(test.height)×\(test.width) \(test.inputKind.rawValue)) differ from \(file)'s (\(train.channels)×\(train.height)×\(train.width) \(train.inputKind.rawValue)); use a test file of the same data")
            }
            test.classes = max(test.classes, train.classes)
        } else {
            test = train.subset([])
            test.name = "npz/test (none)"
        }
        var split = DatasetSplit(train: train, test: test)
        split.train.classes = max(train.classes, test.classes)
        if train.inputKind == .features {
            split = try Tabular.standardized(split, featureStats: files.featureStats)
        } else {
            split.test.channelMean = train.channelMean; split.test.channelStd = train.channelStd
        }
        return split
    }
    let dir: String
    if let given = dataDir {
        dir = given
    } else if let fallback = kind.defaultDirectory {
        dir = fallback
    } else {
        throw LoaderError.missingFile(path: "(no --data-dir)", hint: "--dataset npz needs --data-dir DIR holding \(npzPartitionFile) (written by `flwr privatize --out DIR`)")
    }
    switch kind {
    case .fashionMNIST, .mnist:
        // Per-channel stats of the training sets (Fashion-MNIST 0.2860/0.3530, MNIST 0.1307/0.3081).
        let (mean, std): (Float, Float) = kind == .mnist ? (0.1307, 0.3081) : (0.2860, 0.3530)
        let train = try IDX.loadSplit(dir: dir, split: "train", datasetName: kind.rawValue, classes: 10, mean: mean, std: std)
        let test = try IDX.loadSplit(dir: dir, split: "t10k", datasetName: kind.rawValue, classes: 10, mean: mean, std: std)
        return DatasetSplit(train: train, test: test)
    case .cifar10:
        return try CIFAR10.load(dir)
    case .csv:
        return try Tabular.load(files)
    case .npz:
        let train = try NPZ.readDataset(joinPath(dir, npzPartitionFile))
        let testPath = joinPath(dir, npzTestFile)
        var test: Dataset
        if fileExists(testPath) {
            test = try NPZ.readDataset(testPath)
        } else {
            test = train.subset([])
            test.name = "npz/test (none)"
        }
        test.channelMean = train.channelMean; test.channelStd = train.channelStd
        return DatasetSplit(train: train, test: test)
    }
}
