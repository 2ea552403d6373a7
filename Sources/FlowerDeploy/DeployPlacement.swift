// The descriptor fields that put each client where its data lives: spec.client.data
// (a hostPath on every node, or one PersistentVolumeClaim per client), placement (one
// nodeSelector/affinity for all clients or one per client index), tolerations, resources,
// priorityClassName, restartPolicy (Job or StatefulSet) and allowSharedNodes. Read as strictly as
// the rest of the descriptor: an unknown field, a wrong type or an impossible value is a problem
// naming its path.
import Yams

/// Where pods may run: a pod spec's nodeSelector and/or affinity.
public struct Placement: Equatable, Sendable {
    /// Node labels the pod's node must carry.
    public var nodeSelector: [String: String] = [:]
    /// A Kubernetes affinity (nodeAffinity / podAffinity / podAntiAffinity), as written.
    public var affinity: YAMLValue?
}

/// spec.client.placement: one placement for every client, or one per client index.
public enum ClientPlacement: Equatable, Sendable {
    /// The same placement for every client.
    case all(Placement)
    /// `index → placement`; clients without an entry may run anywhere.
    case perIndex([Int: Placement])

    /// The placement of client `index`.
    public func placement(index: Int) -> Placement? {
        switch self {
        case let .all(placement): return placement
        case let .perIndex(entries): return entries[index]
        }
    }
}

/// spec.client.data: a client's own data on a volume of its node.
public struct ClientData: Equatable, Sendable {
    /// Which volume holds it.
    public enum Volume: Equatable, Sendable {
        /// The same folder on every node (each node holding its own site's data), mounted at the same path.
        case hostPath(String)
        /// Claim `prefix-i` for client i, mounted at `DeployLayout.dataDir`.
        case persistentVolumeClaim(prefix: String)
    }

    public var volume: Volume
    /// The client's --dataset (npz by default: a folder holding partition.npz, optionally test.npz).
    public var format = "npz"

    /// Whether every client mounts a different volume (so each needs its own workload).
    public var isPerClient: Bool {
        if case .persistentVolumeClaim = volume { return true }
        return false
    }
}

extension FLDeployment {
    /// The fields of one toleration.
    static let tolerationFields = ["key", "operator", "value", "effect", "tolerationSeconds"]
    /// The fields of an affinity.
    static let affinityFields = ["nodeAffinity", "podAffinity", "podAntiAffinity"]
    /// Values of spec.client.data.format: the --dataset kinds `flwr client` reads from a folder.
    public static let dataFormats = ["npz", "fashion-mnist", "mnist", "cifar10"]

    /// Whether clients need one workload each (per-client volumes or per-index placement).
    public var clientsArePerIndex: Bool {
        if client.data?.isPerClient == true { return true }
        if case .perIndex = client.placement { return true }
        return false
    }
}

/// `path` with list indices dropped (`spec.client.placement[2]` → `spec.client.placement[]`), the
/// key under which `knownFields` lists a list item's fields.
func schemaPath(_ path: String) -> String {
    var out = ""
    var inIndex = false
    for c in path {
        if c == "[" { inIndex = true; out.append("[") } else if c == "]" { inIndex = false; out.append("]") } else if !inIndex { out.append(c) }
    }
    return out
}

extension DescriptorReader {
    /// spec.client's edge fields (after num_clients, dataset and privacy were read).
    mutating func readEdgeFields(_ client: Node.Mapping, into c: inout FLDeployment.Client) {
        let p = "spec.client"
        if let data = child(client, p, "data").flatMap({ mapping($0, p + ".data") }) {
            c.data = clientData(data, numClients: c.numClients)
            if c.data != nil, c.datasetPath != nil {
                problems.append("spec.client.data and spec.client.dataset.path both say where the data is; keep "
                    + "data (each client's own volume) or dataset.path (a folder in the image), not both")
            }
        }
        if let node = child(client, p, "placement") {
            if case let .sequence(items) = node {
                var entries: [Int: Placement] = [:]
                for (i, item) in items.enumerated() {
                    let path = "\(p).placement[\(i)]"
                    guard let map = mapping(item, path) else { continue }
                    guard let index = int(map, path, "index", in: 0...(c.numClients - 1),
                                          hint: "client indices run from 0 to num_clients - 1 = \(c.numClients - 1)")
                    else {
                        if map["index"] == nil { problems.append("missing required field \(path).index") }
                        continue
                    }
                    if entries[index] != nil {
                        problems.append("\(path).index \(index) is listed twice; give each client index one entry")
                    }
                    if let placement = placementFields(map, path) { entries[index] = placement }
                }
                c.placement = .perIndex(entries)
            } else if let placement = placement(node, p + ".placement") {
                c.placement = .all(placement)
            }
        }
        c.tolerations = tolerations(client, p)
        c.resources = resources(client, p)
        c.priorityClassName = priorityClassName(client, p)
        if let policy = string(client, p, "restartPolicy") {
            let allowed = ["OnFailure", "Never", "Always"]
            if allowed.contains(policy) { c.restartPolicy = policy } else {
                problems.append("spec.client.restartPolicy \"\(policy)\" must be OnFailure or Never (clients as a Job) "
                    + "or Always (a StatefulSet of long-lived clients)")
            }
        }
        if c.restartPolicy == "Always", c.privacy != nil, c.data == nil {
            problems.append("spec.client.privacy with restartPolicy: Always needs spec.client.data: a long-lived "
                + "client restarts, and with its data in the image it would release it again (refused by its "
                + "ledger, budget spent); put the data on a volume (the release and ledger are kept there) or use "
                + "restartPolicy: OnFailure")
        }
        c.allowSharedNodes = bool(client, p, "allowSharedNodes") ?? c.allowSharedNodes
        if let node = c.nodeName, !c.allowSharedNodes, c.numClients > 1 {
            problems.append("spec.client.nodeName \"\(node)\" puts all \(c.numClients) clients on one node, which "
                + "two clients may not share; set spec.client.allowSharedNodes: true or use spec.client.placement")
        }
    }

    /// spec.client.data: exactly one of hostPath / persistentVolumeClaim, and the format.
    mutating func clientData(_ map: Node.Mapping, numClients: Int) -> ClientData? {
        let p = "spec.client.data"
        let hostPath = string(map, p, "hostPath")
        let claim = string(map, p, "persistentVolumeClaim")
        var volume: ClientData.Volume?
        switch (hostPath, claim) {
        case let (path?, nil):
            let parts = path.split(separator: "/", omittingEmptySubsequences: true)
            if !path.hasPrefix("/") || parts.isEmpty || parts.contains("..") || parts.contains(".") {
                problems.append("\(p).hostPath \"\(path)\" must be an absolute folder below / without . or .. "
                    + "components, e.g. /srv/flwr-data")
            } else {
                volume = .hostPath(path)
            }
        case let (nil, prefix?):
            let longest = "\(prefix)-\(numClients - 1)"
            if !isDNSLabel(longest, startsWithLetter: false) || longest.count > 63 {
                problems.append("\(p).persistentVolumeClaim \"\(prefix)\" must be a claim-name prefix of lowercase "
                    + "letters, digits and '-' such that \(longest) has at most 63 characters; client i mounts the "
                    + "claim PREFIX-i, e.g. site-data → site-data-0, site-data-1, …")
            } else {
                volume = .persistentVolumeClaim(prefix: prefix)
            }
        case (.some, .some):
            problems.append("\(p) has both hostPath and persistentVolumeClaim; give one")
        case (nil, nil):
            problems.append("\(p) needs hostPath (the same folder on every node) or persistentVolumeClaim "
                + "(claim PREFIX-i for client i)")
        }
        var format = "npz"
        if let given = string(map, p, "format") {
            if FLDeployment.dataFormats.contains(given) { format = given } else {
                problems.append("\(p).format \"\(given)\" must be one of \(FLDeployment.dataFormats.joined(separator: ", ")) "
                    + "(the client's --dataset)")
            }
        }
        return volume.map { ClientData(volume: $0, format: format) }
    }

    /// A placement mapping: nodeSelector and/or affinity.
    mutating func placement(_ node: Node, _ path: String) -> Placement? {
        guard let map = mapping(node, path) else { return nil }
        return placementFields(map, path)
    }

    mutating func placementFields(_ map: Node.Mapping, _ path: String) -> Placement? {
        var placement = Placement()
        placement.nodeSelector = stringMap(map, path, "nodeSelector")
        for (key, value) in placement.nodeSelector.sorted(by: { $0.key < $1.key }) {
            if !isLabelKey(key) {
                problems.append("\(path).nodeSelector key \"\(key)\" is not a label key (optional DNS prefix/, then "
                    + "at most 63 letters, digits, '-', '_' or '.'), e.g. topology.kubernetes.io/zone")
            }
            if !isLabelValue(value) {
                problems.append("\(path).nodeSelector.\(key) \"\(value)\" is not a label value (at most 63 letters, "
                    + "digits, '-', '_' or '.', starting and ending with a letter or digit)")
            }
        }
        if let node = child(map, path, "affinity"), let affinity = mapping(node, path + ".affinity") {
            placement.affinity = value(.mapping(affinity), path + ".affinity")
        }
        if placement.nodeSelector.isEmpty && placement.affinity == nil && map["nodeSelector"] == nil {
            problems.append("\(path) says nothing; give nodeSelector and/or affinity")
            return nil
        }
        return placement
    }

    /// `key.tolerations`: a list of Kubernetes tolerations, checked field by field.
    mutating func tolerations(_ map: Node.Mapping, _ path: String) -> [YAMLValue] {
        guard let node = child(map, path, "tolerations") else { return [] }
        guard case let .sequence(items) = node else {
            problems.append("\(path).tolerations must be a list of tolerations, got \(describe(node))\(line(node))")
            return []
        }
        var result: [YAMLValue] = []
        for (i, item) in items.enumerated() {
            let p = "\(path).tolerations[\(i)]"
            guard let t = mapping(item, p) else { continue }
            var fields: [(String, YAMLValue)] = []
            let key = string(t, p, "key")
            let op = string(t, p, "operator") ?? "Equal"
            let value = string(t, p, "value")
            let effect = string(t, p, "effect")
            let seconds = int(t, p, "tolerationSeconds", in: Int(Int32.min)...Int(Int32.max),
                              hint: "give seconds as a 32-bit integer")
            if let key {
                if !key.isEmpty, !isLabelKey(key) { problems.append("\(p).key \"\(key)\" is not a taint key (a label key)") }
                fields.append(("key", .string(key)))
            }
            switch op {
            case "Exists":
                if let value, !value.isEmpty {
                    problems.append("\(p) has operator Exists and value \"\(value)\"; Exists matches any value: drop value")
                }
            case "Equal":
                if key == nil || key == "" {
                    problems.append("\(p) has operator Equal without a key; give the taint's key (or operator: Exists "
                        + "to tolerate every taint)")
                }
            default:
                problems.append("\(p).operator \"\(op)\" must be Exists or Equal")
            }
            if t["operator"] != nil { fields.append(("operator", .string(op))) }
            if let value { fields.append(("value", .string(value))) }
            if let effect {
                let allowed = ["NoSchedule", "PreferNoSchedule", "NoExecute"]
                if !allowed.contains(effect) {
                    problems.append("\(p).effect \"\(effect)\" must be one of \(allowed.joined(separator: ", ")) (or omitted: all)")
                }
                fields.append(("effect", .string(effect)))
            }
            if let seconds {
                if effect != "NoExecute" {
                    problems.append("\(p).tolerationSeconds applies to effect NoExecute only; set effect: NoExecute or drop it")
                }
                fields.append(("tolerationSeconds", .int(seconds)))
            }
            result.append(.map(fields))
        }
        return result
    }

    /// `key.resources`: requests and limits, each resource name → quantity (rendered as strings).
    mutating func resources(_ map: Node.Mapping, _ path: String) -> YAMLValue? {
        guard let node = child(map, path, "resources"), let r = mapping(node, path + ".resources") else { return nil }
        var out: [(String, YAMLValue)] = []
        for section in ["requests", "limits"] {
            let p = "\(path).resources.\(section)"
            guard let sectionNode = child(r, path + ".resources", section) else { continue }
            guard case let .mapping(entries) = sectionNode else {
                problems.append("\(p) must be a mapping of resource names to quantities, got \(describe(sectionNode))\(line(sectionNode))")
                continue
            }
            var values: [(String, YAMLValue)] = []
            for (k, v) in entries {
                let name = k.string ?? "\(k)"
                if !isResourceName(name) {
                    problems.append("\(p).\(name) is not a resource name; use cpu, memory, ephemeral-storage, "
                        + "hugepages-<size> or a vendor/resource such as nvidia.com/gpu")
                    continue
                }
                guard case let .scalar(s) = v, [.int, .float, .str].contains(tagName(v)), isQuantity(s.string) else {
                    problems.append("\(p).\(name) must be a Kubernetes quantity such as 500m, 2, 512Mi or 1Gi, "
                        + "got \(describe(v))\(line(v))")
                    continue
                }
                values.append((name, .string(s.string)))
            }
            if values.isEmpty {
                problems.append("\(p) is empty; list at least one resource or drop it")
            } else {
                out.append((section, .map(values)))
            }
        }
        if out.isEmpty, r.isEmpty { problems.append("\(path).resources is empty; give requests and/or limits") }
        return out.isEmpty ? nil : .map(out)
    }

    /// `key.priorityClassName`: a PriorityClass name (DNS subdomain).
    mutating func priorityClassName(_ map: Node.Mapping, _ path: String) -> String? {
        guard let name = string(map, path, "priorityClassName") else { return nil }
        let labels = name.split(separator: ".", omittingEmptySubsequences: false)
        guard name.count <= 253, !labels.isEmpty, labels.allSatisfy({ isDNSLabel(String($0), startsWithLetter: false) && $0.count <= 63 })
        else {
            problems.append("\(path).priorityClassName \"\(name)\" is not a PriorityClass name (lowercase letters, digits, "
                + "'-' and '.'), e.g. fl-edge-high")
            return nil
        }
        return name
    }

    /// Any YAML node as a value (for affinity, passed through as written); null is refused.
    mutating func value(_ node: Node, _ path: String) -> YAMLValue? {
        switch node {
        case let .scalar(s):
            switch tagName(node) {
            case .int: return node.int.map(YAMLValue.int) ?? .string(s.string)
            case .float: return node.float.map(YAMLValue.double) ?? .string(s.string)
            case .bool: return node.bool.map(YAMLValue.bool) ?? .string(s.string)
            case .null:
                problems.append("\(path) is null; give a value or drop the field")
                return nil
            default: return .string(s.string)
            }
        case let .mapping(map):
            var pairs: [(String, YAMLValue)] = []
            for (k, v) in map {
                let key = k.string ?? "\(k)"
                if let inner = value(v, path + "." + key) { pairs.append((key, inner)) }
            }
            return .map(pairs)
        case let .sequence(items):
            return .list(items.enumerated().compactMap { value($1, "\(path)[\($0)]") })
        case .alias:
            problems.append("\(path) uses a YAML alias; write the value out")
            return nil
        }
    }
}

/// A label value: empty, or at most 63 of [A-Za-z0-9-_.] with alphanumeric ends.
func isLabelValue(_ s: String) -> Bool {
    if s.isEmpty { return true }
    guard s.count <= 63, let first = s.first, let last = s.last else { return false }
    let ok = s.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }
    return ok && first.isASCII && (first.isLetter || first.isNumber) && last.isASCII && (last.isLetter || last.isNumber)
}

/// A label key: an optional DNS-subdomain prefix and `/`, then a non-empty label-value-like name.
func isLabelKey(_ s: String) -> Bool {
    let parts = s.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
    let name = parts.last ?? ""
    guard !name.isEmpty, isLabelValue(name) else { return false }
    if parts.count == 2 {
        let prefix = parts[0]
        let labels = prefix.split(separator: ".", omittingEmptySubsequences: false)
        return prefix.count <= 253 && labels.allSatisfy { isDNSLabel(String($0), startsWithLetter: false) && $0.count <= 63 }
    }
    return true
}

/// cpu, memory, ephemeral-storage, hugepages-<size>, or a qualified vendor name (`nvidia.com/gpu`).
func isResourceName(_ s: String) -> Bool {
    if ["cpu", "memory", "ephemeral-storage"].contains(s) { return true }
    if s.hasPrefix("hugepages-") { return isQuantity(String(s.dropFirst("hugepages-".count))) }
    return s.contains("/") && isLabelKey(s)
}

/// A non-negative Kubernetes quantity: a decimal number with an optional SI (m, k, M, G, T, P, E),
/// binary (Ki … Ei) or exponent (e3) suffix.
func isQuantity(_ s: String) -> Bool {
    var rest = Substring(s)
    if rest.hasPrefix("+") { rest = rest.dropFirst() }
    let number = rest.prefix { $0.isASCII && ($0.isNumber || $0 == ".") }
    guard !number.isEmpty, number.filter({ $0 == "." }).count <= 1, number != "." else { return false }
    let suffix = rest.dropFirst(number.count)
    if ["", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"].contains(String(suffix)) { return true }
    guard let e = suffix.first, e == "e" || e == "E" else { return false }
    var exponent = suffix.dropFirst()
    if exponent.hasPrefix("+") || exponent.hasPrefix("-") { exponent = exponent.dropFirst() }
    return !exponent.isEmpty && exponent.allSatisfy { $0.isASCII && $0.isNumber }
}
