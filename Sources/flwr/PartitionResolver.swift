// Which data partition a client trains on, from wherever the deployment put it.
//
// Order: `--partition`, else FLWR_PARTITION, else JOB_COMPLETION_INDEX (set by Kubernetes in every
// pod of an Indexed Job), else the ordinal at the end of the hostname (a StatefulSet pod
// `flwr-client-3`, or an Indexed Job pod `<job>-3`), else an error saying how to set it.

import Foundation

/// Why no partition could be determined.
enum PartitionError: Error, CustomStringConvertible, Equatable {
    /// A variable holds something that is not a non-negative integer.
    case notAnIndex(source: String, value: String)
    /// --partition is negative.
    case negativeFlag(Int)
    /// No flag, no variable and no ordinal at the end of the hostname.
    case unresolved(hostname: String?)

    var description: String {
        switch self {
        case let .notAnIndex(source, value):
            return "\(source)=\"\(value)\" is not a partition index; set it to a non-negative integer "
                + "(0 for the first client)"
        case let .negativeFlag(value):
            return "--partition \(value) is negative; partitions are numbered from 0"
        case let .unresolved(hostname):
            let host = hostname.map { "the hostname \"\($0)\" does not end in -<number>" } ?? "no hostname"
            return "cannot tell which partition this client trains on: no --partition, no FLWR_PARTITION, "
                + "no JOB_COMPLETION_INDEX, and \(host); pass --partition N (0-based)"
        }
    }
}

/// The client's partition: `flag`, else FLWR_PARTITION, else JOB_COMPLETION_INDEX, else the
/// ordinal ending `hostname` (`flwr-client-3` → 3). Empty variables count as unset.
func resolvePartition(flag: Int?, environment: [String: String], hostname: String?) throws -> Int {
    if let flag {
        guard flag >= 0 else { throw PartitionError.negativeFlag(flag) }
        return flag
    }
    for variable in ["FLWR_PARTITION", "JOB_COMPLETION_INDEX"] {
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
func hostnameOrdinal(_ hostname: String) -> Int? {
    let label = hostname.split(separator: ".", maxSplits: 1).first.map(String.init) ?? hostname
    guard let dash = label.lastIndex(of: "-") else { return nil }
    let digits = label[label.index(after: dash)...]
    guard !digits.isEmpty, digits.count <= 9, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
    return Int(digits)
}
