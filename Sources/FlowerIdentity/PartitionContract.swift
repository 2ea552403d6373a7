// The identity contract between a deployment and its clients, in one place: `flwr deploy`
// (FlowerDeploy) renders these variables and identities into the pods, and `flwr client`
// (FlowerRuntime's ClientRuntime) reads them back.
//
// What a client trains on. With none of --partition, --num-partitions, --alpha it is the client's
// own data: everything in --data-dir, as on an edge site whose folder holds that site's data and
// nothing else. With any of them it is one partition of a shared dataset (simulation-style runs),
// and the partition comes from wherever the deployment put it.
//
// Order for the partition: `--partition`, else FLWR_PARTITION, else JOB_COMPLETION_INDEX (set by Kubernetes in every
// pod of an Indexed Job), else the ordinal at the end of the hostname (a StatefulSet pod
// `flwr-client-3`, or an Indexed Job pod `<job>-3`), else an error saying how to set it.

import Foundation

/// Why no partition could be determined.
public enum PartitionError: Error, CustomStringConvertible, Equatable {
    /// A variable holds something that is not a non-negative integer.
    case notAnIndex(source: String, value: String)
    /// --partition is negative.
    case negativeFlag(Int)
    /// No flag, no variable and no ordinal at the end of the hostname.
    case unresolved(hostname: String?)
    /// The partition is not below --num-partitions.
    case outOfRange(index: Int, count: Int)

    public var description: String {
        switch self {
        case let .notAnIndex(source, value):
            return "\(source)=\"\(value)\" is not a partition index; set it to a non-negative integer "
                + "(0 for the first client)"
        case let .negativeFlag(value):
            return "--partition \(value) is negative; partitions are numbered from 0"
        case let .unresolved(hostname):
            let host = hostname.map { "the hostname \"\($0)\" does not end in -<number>" } ?? "no hostname"
            return "cannot tell which partition this client trains on: no --partition, no FLWR_PARTITION, "
                + "no JOB_COMPLETION_INDEX, and \(host); pass --partition N (0-based), or none of "
                + "--partition/--num-partitions/--alpha to train on the whole of --data-dir"
        case let .outOfRange(index, count):
            return "partition \(index) is outside 0..<\(count) (--num-partitions); raise --num-partitions "
                + "or use a partition below it"
        }
    }
}

/// The client's partition: `flag`, else FLWR_PARTITION, else JOB_COMPLETION_INDEX, else the
/// ordinal ending `hostname` (`flwr-client-3` → 3). Empty variables count as unset.
public func resolvePartition(flag: Int?, environment: [String: String], hostname: String?) throws -> Int {
    if let flag {
        guard flag >= 0 else { throw PartitionError.negativeFlag(flag) }
        return flag
    }
    for variable in [IdentityContract.partitionVariable, IdentityContract.jobIndexVariable] {
        guard let raw = environment[variable] else { continue }
        let value = raw.trimmingCharacters(in: .whitespaces)
        if value.isEmpty { continue }
        guard let index = Int(value), index >= 0 else {
            throw PartitionError.notAnIndex(source: variable, value: raw)
        }
        return index
    }
    if let hostname, let ordinal = hostnameOrdinal(hostname) { return ordinal }
    throw PartitionError.unresolved(hostname: hostname)
}

/// The number after the last `-` of the hostname's first label (`flwr-client-3.svc` → 3), if any.
public func hostnameOrdinal(_ hostname: String) -> Int? {
    let label = hostname.split(separator: ".", maxSplits: 1).first.map(String.init) ?? hostname
    guard let dash = label.lastIndex(of: "-") else { return nil }
    let digits = label[label.index(after: dash)...]
    guard !digits.isEmpty, digits.count <= 9, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
    return Int(digits)
}

/// What a client trains on: all of its data folder, or one partition of a shared dataset.
public enum DataSelection: Equatable, Sendable {
    /// Everything the dataset reader finds in --data-dir (training set and, if any, test set).
    case whole
    /// Partition `index` of `count` of the training set, every `count`-th test example for evaluation.
    case partition(index: Int, count: Int)

    /// The partition index, if partitioned.
    public var index: Int? {
        if case let .partition(index, _) = self { return index }
        return nil
    }
}

/// `.whole` when no flag asks for a split (`partitionFlag` nil and `asksForSplit` false), else the
/// partition `resolvePartition` finds, checked against `numPartitions`.
public func resolveDataSelection(partitionFlag: Int?, asksForSplit: Bool, numPartitions: Int,
                          environment: [String: String], hostname: String?) throws -> DataSelection {
    if partitionFlag == nil && !asksForSplit { return .whole }
    let index = try resolvePartition(flag: partitionFlag, environment: environment, hostname: hostname)
    guard index < numPartitions else { throw PartitionError.outOfRange(index: index, count: numPartitions) }
    return .partition(index: index, count: numPartitions)
}

/// The identity a client announces when no --client-id is given: `partition-N` for a partition,
/// else the hostname's first label (a pod's name, `fl-deployment-client-3`; unique per pod).
public func defaultClientID(_ selection: DataSelection, hostname: String) -> String {
    if let index = selection.index { return IdentityContract.clientID(partition: index) }
    let label = hostname.split(separator: ".", maxSplits: 1).first.map(String.init) ?? ""
    return label.isEmpty ? "client" : label
}

/// The names both sides of the contract use.
public enum IdentityContract {
    /// The client's partition, set per pod when pods differ by index.
    public static let partitionVariable = "FLWR_PARTITION"
    /// Kubernetes sets it in every pod of an Indexed Job.
    public static let jobIndexVariable = "JOB_COMPLETION_INDEX"
    /// The client's identity (the environment form of `flwr client --client-id`).
    public static let clientIDVariable = "FLWR_CLIENT_ID"

    /// The identity a client of partition `index` announces when no --client-id is given.
    public static func clientID(partition index: Int) -> String { "partition-\(index)" }
}
