// CIFAR-10, binary version (Krizhevsky 2009, https://www.cs.toronto.edu/~kriz/cifar.html):
// data_batch_1.bin … data_batch_5.bin (train, 10,000 records each) and test_batch.bin. A record
// is 1 label byte then 3,072 pixel bytes: the 1,024 red, 1,024 green, 1,024 blue values of a
// 32×32 image, each row-major; that is already CHW, so records are copied, never transposed.
// Accepted locations: the .bin files in a folder, a `cifar-10-batches-bin/` folder inside it, or
// the archive as distributed (`cifar-10-binary.tar.gz`), given as the folder or the file itself.

/// Reader for the CIFAR-10 binary format.
public enum CIFAR10 {
    /// Bytes per record: 1 label + 3×32×32 pixels.
    public static let recordSize = 3073
    /// File names of the training batches, in order.
    public static let trainFiles = (1 ... 5).map { "data_batch_\($0).bin" }
    /// File name of the test batch.
    public static let testFile = "test_batch.bin"
    /// Name of the archive as distributed.
    public static let archiveName = "cifar-10-binary.tar.gz"
    /// Per-channel mean and std of the CIFAR-10 training set (the values torchvision users quote).
    static let mean: [Float] = [0.4914, 0.4822, 0.4465]
    static let std: [Float] = [0.2470, 0.2435, 0.2616]

    /// Parses the records of one batch file held in `bytes` (`path` names it in errors),
    /// appending pixels and labels.
    static func parseBatch(_ bytes: [UInt8], path: String, pixels: inout [UInt8], labels: inout [Int32]) throws {
        guard !bytes.isEmpty else { throw LoaderError.truncated(path: path, detail: "the file is empty") }
        let whole = bytes.count / recordSize, rest = bytes.count % recordSize
        guard rest == 0 else {
            throw LoaderError.truncated(path: path, detail: "\(bytes.count) bytes is \(whole) whole \(recordSize)-byte records and \(rest) bytes of a cut record")
        }
        pixels.reserveCapacity(pixels.count + whole * 3072)
        labels.reserveCapacity(labels.count + whole)
        for r in 0 ..< whole {
            let o = r * recordSize
            let label = bytes[o]
            guard label < 10 else {
                throw LoaderError.labelOutOfRange(path: path, index: r, label: Int(label), classes: 10)
            }
            labels.append(Int32(label))
            pixels.append(contentsOf: bytes[o + 1 ..< o + recordSize])
        }
    }

    /// Loads train and test sets from `location` (folder, batches folder or .tar.gz).
    public static func load(_ location: String) throws -> DatasetSplit {
        let source = try resolve(location)
        func loadFiles(_ names: [String], split: String) throws -> Dataset {
            var pixels: [UInt8] = [], labels: [Int32] = []
            for name in names {
                let (bytes, path) = try source.read(name)
                try parseBatch(bytes, path: path, pixels: &pixels, labels: &labels)
            }
            return Dataset(bytes: pixels, labels: labels, channels: 3, height: 32, width: 32, classes: 10,
                           name: "cifar10/\(split)", channelMean: mean, channelStd: std)
        }
        return DatasetSplit(train: try loadFiles(trainFiles, split: "train"),
                            test: try loadFiles([testFile], split: "test"))
    }

    /// Where the batch files come from.
    enum Source {
        case folder(String)
        case archive(path: String, bytes: [UInt8], entries: [String: Range<Int>])

        /// The bytes of batch file `name` and the path to name in errors.
        func read(_ name: String) throws -> ([UInt8], String) {
            switch self {
            case .folder(let dir):
                let path = joinPath(dir, name)
                guard fileExists(path) else {
                    throw LoaderError.missingFile(path: path, hint: "a CIFAR-10 folder holds data_batch_1.bin … data_batch_5.bin and test_batch.bin")
                }
                return (try readFileBytes(path), path)
            case .archive(let path, let bytes, let entries):
                guard let range = entries[name] else {
                    throw LoaderError.missingFile(path: "\(path): cifar-10-batches-bin/\(name)", hint: "the archive lacks this batch; re-download cifar-10-binary.tar.gz")
                }
                return (Array(bytes[range]), "\(path): cifar-10-batches-bin/\(name)")
            }
        }
    }

    /// Decides whether `location` is the archive, a folder of .bin files or its parent.
    static func resolve(_ location: String) throws -> Source {
        if fileExists(location) { return try openArchive(location) }
        let candidates = [location, joinPath(location, "cifar-10-batches-bin")]
        for dir in candidates where fileExists(joinPath(dir, trainFiles[0])) || fileExists(joinPath(dir, testFile)) {
            return .folder(dir)
        }
        for name in [archiveName, "cifar-10-binary.tgz"] where fileExists(joinPath(location, name)) {
            return try openArchive(joinPath(location, name))
        }
        throw LoaderError.missingFile(
            path: joinPath(location, trainFiles[0]),
            hint: "pass --data-dir pointing at the CIFAR-10 binary files (data_batch_1.bin … test_batch.bin), at a folder holding cifar-10-batches-bin/, or at \(archiveName)")
    }

    /// Gunzips and indexes a CIFAR-10 tar.gz, keyed by the batch file's base name.
    static func openArchive(_ path: String) throws -> Source {
        let tar = try readMaybeGzip(path)
        var entries: [String: Range<Int>] = [:]
        for entry in try Tar.entries(tar, path: path) {
            let base = entry.name.split(separator: "/").last.map(String.init) ?? entry.name
            if base.hasSuffix(".bin") { entries[base] = entry.range }
        }
        return .archive(path: path, bytes: tar, entries: entries)
    }
}
