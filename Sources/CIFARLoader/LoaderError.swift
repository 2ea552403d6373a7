// LoaderError: every way reading, partitioning or privatising data can fail, each naming the
// file or value at fault and what to do about it.
import FlowerZlib

/// A CIFARLoader failure; `description` names the bad file or value and the remedy.
public enum LoaderError: Error, CustomStringConvertible, Sendable {
    /// A dataset file is not where it was looked for.
    case missingFile(path: String, hint: String)
    /// A file could not be read (permissions, I/O error).
    case unreadable(path: String, reason: String)
    /// A file starts with the wrong magic number for its format.
    case wrongMagic(path: String, expected: String, found: String)
    /// A file ends in the middle of a header or record.
    case truncated(path: String, detail: String)
    /// A label outside 0..<classes.
    case labelOutOfRange(path: String, index: Int, label: Int, classes: Int)
    /// Images and labels disagree on the number of samples.
    case countMismatch(images: String, imageCount: Int, labels: String, labelCount: Int)
    /// A .gz (or zipped) file failed to decompress.
    case corruptCompressed(path: String, underlying: ZlibError)
    /// The file is readable but its content is not what the format allows.
    case malformed(path: String, detail: String)
    /// A name on the command line that is not one of the accepted choices.
    case unknownChoice(what: String, value: String, choices: [String])
    /// Partitioning parameters that cannot work (e.g. more partitions than samples).
    case invalidPartitioning(String)
    /// The Dirichlet partitioner could not meet the minimum partition size.
    /// `largest` is the most partitions that split allows (`dirichletPartitionLimit`), of `samples` in `classes` classes.
    case partitionTooSmall(tries: Int, smallest: Int, minPartitionSize: Int, numPartitions: Int, alpha: Double,
                           largest: Int, samples: Int, classes: Int)
    /// A privacy parameter out of range (ε ≤ 0, budget ≤ 0, ...).
    case invalidPrivacy(String)
    /// A release would push the ledger past its privacy budget.
    case overBudget(ledger: String, spent: Double, requested: Double, budget: Double, unit: String)
    /// Writing a file failed.
    case writeFailed(path: String, reason: String)

    public var description: String {
        switch self {
        case .missingFile(let path, let hint):
            return "\(path): no such file; \(hint)"
        case .unreadable(let path, let reason):
            return "\(path): cannot read (\(reason)); check the path and its permissions"
        case .wrongMagic(let path, let expected, let found):
            return "\(path): wrong magic number \(found) (expected \(expected)); the file is not in the format its name says, or it is still compressed"
        case .truncated(let path, let detail):
            return "\(path): truncated (\(detail)); the file was cut short: re-download it"
        case .labelOutOfRange(let path, let index, let label, let classes):
            return "\(path): label \(label) of sample \(index) is outside 0..<\(classes); the file is damaged or belongs to another dataset"
        case .countMismatch(let images, let imageCount, let labels, let labelCount):
            return "\(images) holds \(imageCount) images but \(labels) holds \(labelCount) labels; use files from the same split (train or t10k) of the same dataset"
        case .corruptCompressed(let path, let underlying):
            return "\(path): \(underlying)"
        case .malformed(let path, let detail):
            return "\(path): \(detail)"
        case .unknownChoice(let what, let value, let choices):
            return "unknown \(what) '\(value)'; choose one of: \(choices.joined(separator: ", "))"
        case .invalidPartitioning(let why):
            return why
        case .partitionTooSmall(let tries, let smallest, let minSize, let n, let alpha, let largest, let samples, let classes):
            return "Dirichlet partitioning (alpha \(alpha), \(n) partitions) gave a partition of only \(smallest) samples after \(tries) tries, below the minimum of \(minSize); \(samples) samples in \(classes) classes split this way into about \(largest) partitions at most: lower --num-partitions to \(largest) or fewer, raise --alpha or lower --min-partition-size"
        case .invalidPrivacy(let why):
            return why
        case .overBudget(let ledger, let spent, let requested, let budget, let unit):
            return "privacy budget exceeded: \(ledger) has already spent epsilon \(fmt(spent)) (\(unit) level); releasing epsilon \(fmt(requested)) more would reach \(fmt(spent + requested)) > --privacy-budget \(fmt(budget)); reuse the released copy (--dataset npz), lower --dp-epsilon, or start from data not yet released"
        case .writeFailed(let path, let reason):
            return "\(path): cannot write (\(reason)); check the directory exists and is writable"
        }
    }
}

/// Formats an ε without float noise ("0.5", "1", "12.25").
func fmt(_ value: Double) -> String {
    let rounded = (value * 1e6).rounded() / 1e6
    if rounded == rounded.rounded() && abs(rounded) < 1e15 { return String(Int64(rounded)) }
    return String(rounded)
}
