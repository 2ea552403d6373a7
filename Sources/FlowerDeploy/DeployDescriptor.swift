// The FLDeployment descriptor `flwr deploy` reads: kubeFlower's custom resource (apiVersion
// flwr.dev/v1), with its fields and the operator's defaults (kubeFlower's FLDeployment CRD and operator), read
// strictly: an unknown field, a wrong type or an impossible value is an error naming its path.
import Foundation
import Yams

/// A parsed, validated FLDeployment.
public struct FLDeployment: Equatable, Sendable {
    /// metadata.name: prefix of every object's name and the `app.kubernetes.io/instance` label.
    public var name: String
    /// metadata.namespace, if given.
    public var namespace: String?
    /// metadata.labels, added to every object.
    public var labels: [String: String] = [:]
    /// metadata.annotations, added to every object.
    public var annotations: [String: String] = [:]
    /// spec.server.
    public var server = Server()
    /// spec.client.
    public var client = Client()
    /// spec.tls: TLS 1.3 between clients and server, certificates rendered by `flwr deploy`
    /// (or cert-manager); default true (DeploySecrets.swift).
    public var tls = true

    /// spec.server, with the operator's defaults.
    public struct Server: Equatable, Sendable {
        public var image: String?
        public var imagePullPolicy = "IfNotPresent"
        public var nodeName: String?
        public var port = 8080
        public var replicas = 1
        /// nil: as many as spec.client.num_clients (kubeFlower's operator defaulted to 2).
        public var minClients: Int?
        public var rounds = 5
        public var args: [String] = []
        /// Where the server pod may run (nodeSelector / affinity).
        public var placement: Placement?
        /// Pod tolerations, each a Kubernetes toleration as written.
        public var tolerations: [YAMLValue] = []
        /// Container resources (requests/limits); nil: 500m/256Mi requested, 2/2Gi limit.
        public var resources: YAMLValue?
        public var priorityClassName: String?
    }

    /// spec.client, with the operator's defaults.
    public struct Client: Equatable, Sendable {
        public var image: String?
        public var imagePullPolicy = "IfNotPresent"
        public var nodeName: String?
        /// Accepted for compatibility; flwr clients listen on no port.
        public var port: Int?
        public var numClients = 2
        public var isolation = true
        public var datasetDownload = false
        public var datasetPath: String?
        /// nil when the descriptor has no `privacy` block: no differential privacy.
        public var privacy: Privacy?
        public var args: [String] = []
        /// spec.client.data: each client's own data on its node (nil: dataset.path in the image).
        public var data: ClientData?
        /// Where client pods run: one placement for all, or one per client index.
        public var placement: ClientPlacement?
        /// Pod tolerations, each a Kubernetes toleration as written.
        public var tolerations: [YAMLValue] = []
        /// Container resources (requests/limits); nil: 500m/512Mi requested, 2/2Gi limit.
        public var resources: YAMLValue?
        public var priorityClassName: String?
        /// OnFailure or Never: a Job; Always: a StatefulSet (long-lived clients).
        public var restartPolicy = "OnFailure"
        /// false: two clients never share a node (required pod anti-affinity on the hostname).
        public var allowSharedNodes = false
    }

    /// spec.client.privacy.
    public struct Privacy: Equatable, Sendable {
        /// ε each client may spend; its data is privatised once with ε = budget.
        public var budget = 1.0
        public var rate = 1.0
    }

    /// The server's --min-clients: spec.server.minClients, else every client.
    public var minClients: Int { server.minClients ?? client.numClients }
}

/// What is wrong with a descriptor, by field path, and what to change.
public struct DeployError: Error, CustomStringConvertible, Equatable {
    /// One problem per line, each naming its field.
    public var problems: [String]

    public var description: String {
        problems.count == 1
            ? "invalid FLDeployment: \(problems[0])"
            : "invalid FLDeployment (\(problems.count) problems):\n" + problems.map { "  - " + $0 }.joined(separator: "\n")
    }
}

extension FLDeployment {
    /// The fields each mapping may hold (anything else is an unknown-field error).
    static let knownFields: [String: [String]] = [
        "": ["apiVersion", "kind", "metadata", "spec"],
        "metadata": ["name", "namespace", "labels", "annotations"],
        "spec": ["server", "client", "tls"],
        "spec.server": ["image", "imagePullPolicy", "nodeName", "port", "replicas", "minClients", "rounds", "args",
                        "placement", "tolerations", "resources", "priorityClassName"],
        "spec.client": ["image", "imagePullPolicy", "nodeName", "port", "num_clients", "isolation",
                        "dataset", "privacy", "args", "data", "placement", "tolerations", "resources",
                        "priorityClassName", "restartPolicy", "allowSharedNodes"],
        "spec.client.data": ["hostPath", "persistentVolumeClaim", "format"],
        "spec.server.placement": ["nodeSelector", "affinity"],
        "spec.client.placement": ["nodeSelector", "affinity"],
        "spec.client.placement[]": ["index", "nodeSelector", "affinity"],
        "spec.server.tolerations[]": tolerationFields,
        "spec.client.tolerations[]": tolerationFields,
        "spec.server.resources": ["requests", "limits"],
        "spec.client.resources": ["requests", "limits"],
        "spec.server.placement.affinity": affinityFields,
        "spec.client.placement.affinity": affinityFields,
        "spec.client.placement[].affinity": affinityFields,
        "spec.client.dataset": ["download", "path"],
        "spec.client.privacy": ["budget", "rate"],
    ]

    /// Parses and validates a descriptor; every problem found is reported at once.
    public static func parse(yaml: String) throws(DeployError) -> FLDeployment {
        let root: Node
        do {
            var sequence = try Yams.compose_all(yaml: yaml)
            var documents: [Node] = []
            while let document = sequence.next() { documents.append(document) }
            if let error = sequence.error { throw error }
            guard documents.count == 1 else {
                throw DeployError(problems: ["the file holds \(documents.count) YAML documents; "
                    + "put exactly one FLDeployment in it"])
            }
            root = documents[0]
        } catch let error as DeployError {
            throw error
        } catch {
            throw DeployError(problems: ["not valid YAML: \(error)"])
        }
        var reader = DescriptorReader()
        let deployment = reader.read(root)
        if !reader.problems.isEmpty { throw DeployError(problems: reader.problems) }
        return deployment
    }
}

/// Walks the YAML tree, collecting problems instead of stopping at the first.
struct DescriptorReader {
    var problems: [String] = []

    mutating func read(_ root: Node) -> FLDeployment {
        var d = FLDeployment(name: "")
        guard let top = mapping(root, "") else { return d }
        if let v = string(top, "", "apiVersion", required: true), v != "flwr.dev/v1" {
            problems.append("apiVersion is \"\(v)\"; set it to flwr.dev/v1")
        }
        if let v = string(top, "", "kind", required: true), v != "FLDeployment" {
            problems.append("kind is \"\(v)\"; set it to FLDeployment")
        }
        if let meta = child(top, "", "metadata", required: true).flatMap({ mapping($0, "metadata") }) {
            if let name = string(meta, "metadata", "name", required: true) {
                d.name = name
                if !isDNSLabel(name, startsWithLetter: true) || name.count > 40 {
                    problems.append("metadata.name \"\(name)\" must be at most 40 lowercase letters, digits or '-', "
                        + "start with a letter and end with a letter or digit (it prefixes object names "
                        + "and pod hostnames); e.g. fl-deployment")
                }
            }
            if let ns = string(meta, "metadata", "namespace") {
                d.namespace = ns
                if !isDNSLabel(ns, startsWithLetter: false) || ns.count > 63 {
                    problems.append("metadata.namespace \"\(ns)\" is not a Kubernetes namespace name "
                        + "(lowercase letters, digits and '-', at most 63)")
                }
            }
            d.labels = stringMap(meta, "metadata", "labels")
            d.annotations = stringMap(meta, "metadata", "annotations")
        }
        guard let spec = child(top, "", "spec", required: true).flatMap({ mapping($0, "spec") }) else { return d }
        d.tls = bool(spec, "spec", "tls") ?? true
        if let server = child(spec, "spec", "server").flatMap({ mapping($0, "spec.server") }) {
            let p = "spec.server"
            d.server.image = string(server, p, "image")
            d.server.imagePullPolicy = pullPolicy(server, p) ?? d.server.imagePullPolicy
            d.server.nodeName = string(server, p, "nodeName")
            d.server.port = port(server, p) ?? d.server.port
            d.server.replicas = int(server, p, "replicas", in: 1...1,
                                    hint: "one server coordinates a federation; set it to 1") ?? 1
            d.server.minClients = int(server, p, "minClients", in: 1...100_000, hint: "set it to at least 1")
            d.server.rounds = int(server, p, "rounds", in: 1...1_000_000, hint: "set it to at least 1") ?? d.server.rounds
            d.server.args = stringList(server, p, "args")
            if let node = child(server, p, "placement") { d.server.placement = placement(node, p + ".placement") }
            d.server.tolerations = tolerations(server, p)
            d.server.resources = resources(server, p)
            d.server.priorityClassName = priorityClassName(server, p)
        }
        if let client = child(spec, "spec", "client").flatMap({ mapping($0, "spec.client") }) {
            let p = "spec.client"
            d.client.image = string(client, p, "image")
            d.client.imagePullPolicy = pullPolicy(client, p) ?? d.client.imagePullPolicy
            d.client.nodeName = string(client, p, "nodeName")
            d.client.port = port(client, p)
            d.client.numClients = int(client, p, "num_clients", in: 1...100_000,
                                      hint: "a federation needs at least 1 client") ?? d.client.numClients
            d.client.isolation = bool(client, p, "isolation") ?? d.client.isolation
            if let dataset = child(client, p, "dataset").flatMap({ mapping($0, p + ".dataset") }) {
                d.client.datasetDownload = bool(dataset, p + ".dataset", "download") ?? false
                d.client.datasetPath = string(dataset, p + ".dataset", "path")
                if d.client.datasetDownload {
                    problems.append("spec.client.dataset.download is true, but isolated flwr clients read their "
                        + "data from the image or a volume and download nothing; set it to false and point "
                        + "spec.client.dataset.path at the data")
                }
            }
            if let privacy = child(client, p, "privacy").flatMap({ mapping($0, p + ".privacy") }) {
                var settings = FLDeployment.Privacy()
                if let budget = number(privacy, p + ".privacy", "budget") {
                    if budget > 0, budget.isFinite { settings.budget = budget } else {
                        problems.append("spec.client.privacy.budget \(budget) must be a positive ε "
                            + "(smaller is more private); e.g. 1.0")
                    }
                }
                if let rate = number(privacy, p + ".privacy", "rate") {
                    settings.rate = rate
                    if rate != 1 {
                        problems.append("spec.client.privacy.rate \(rate): flwr privatises every example "
                            + "(rate 1.0) and supports no other rate; remove it or set it to 1.0")
                    }
                }
                d.client.privacy = settings
            }
            d.client.args = stringList(client, p, "args")
            readEdgeFields(client, into: &d.client)
        }
        if let min = d.server.minClients, min > d.client.numClients {
            problems.append("spec.server.minClients \(min) exceeds spec.client.num_clients \(d.client.numClients): "
                + "the server would wait forever; lower minClients or raise num_clients")
        }
        return d
    }

    // MARK: typed field access, each recording a problem that names the path

    /// The node as a mapping whose keys are all known for `path`; nil (with a problem) otherwise.
    mutating func mapping(_ node: Node, _ path: String) -> Node.Mapping? {
        guard case let .mapping(map) = node else {
            problems.append("\(path.isEmpty ? "the document" : path) must be a mapping, got \(describe(node))")
            return nil
        }
        let known = FLDeployment.knownFields[schemaPath(path)]
        for key in map.keys {
            let name = key.string ?? "\(key)"
            if let known, !known.contains(name) {
                let full = path.isEmpty ? name : path + "." + name
                problems.append("unknown field \(full)\(line(key)); \(path.isEmpty ? "the top level" : path) "
                    + "accepts \(known.joined(separator: ", "))")
            }
        }
        return map
    }

    mutating func child(_ map: Node.Mapping, _ path: String, _ key: String, required: Bool = false) -> Node? {
        let full = join(path, key)
        guard let node = map[key], tagName(node) != .null else {
            if required { problems.append("missing required field \(full)") }
            return nil
        }
        return node
    }

    mutating func string(_ map: Node.Mapping, _ path: String, _ key: String, required: Bool = false) -> String? {
        guard let node = child(map, path, key, required: required) else { return nil }
        guard case let .scalar(scalar) = node, tagName(node) == .str else {
            problems.append("\(join(path, key)) must be a string, got \(describe(node))\(line(node))")
            return nil
        }
        if required, scalar.string.isEmpty { problems.append("\(join(path, key)) is empty; give it a value") }
        return scalar.string
    }

    mutating func int(_ map: Node.Mapping, _ path: String, _ key: String, in range: ClosedRange<Int>,
                      hint: String) -> Int? {
        guard let node = child(map, path, key) else { return nil }
        guard tagName(node) == .int, let value = node.int else {
            problems.append("\(join(path, key)) must be an integer, got \(describe(node))\(line(node))")
            return nil
        }
        guard range.contains(value) else {
            problems.append("\(join(path, key)) is \(value), outside \(range.lowerBound)...\(range.upperBound); \(hint)")
            return nil
        }
        return value
    }

    mutating func port(_ map: Node.Mapping, _ path: String) -> Int? {
        int(map, path, "port", in: 1...65535, hint: "use a TCP port between 1 and 65535, e.g. 8080")
    }

    mutating func number(_ map: Node.Mapping, _ path: String, _ key: String) -> Double? {
        guard let node = child(map, path, key) else { return nil }
        guard tagName(node) == .int || tagName(node) == .float, let value = node.float else {
            problems.append("\(join(path, key)) must be a number, got \(describe(node))\(line(node))")
            return nil
        }
        return value
    }

    mutating func bool(_ map: Node.Mapping, _ path: String, _ key: String) -> Bool? {
        guard let node = child(map, path, key) else { return nil }
        guard tagName(node) == .bool, let value = node.bool else {
            problems.append("\(join(path, key)) must be true or false, got \(describe(node))\(line(node))")
            return nil
        }
        return value
    }

    mutating func pullPolicy(_ map: Node.Mapping, _ path: String) -> String? {
        guard let value = string(map, path, "imagePullPolicy") else { return nil }
        let allowed = ["Always", "IfNotPresent", "Never"]
        guard allowed.contains(value) else {
            problems.append("\(path).imagePullPolicy \"\(value)\" must be one of \(allowed.joined(separator: ", "))")
            return nil
        }
        return value
    }

    mutating func stringList(_ map: Node.Mapping, _ path: String, _ key: String) -> [String] {
        guard let node = child(map, path, key) else { return [] }
        guard case let .sequence(items) = node else {
            problems.append("\(join(path, key)) must be a list of strings, got \(describe(node))\(line(node))")
            return []
        }
        var result: [String] = []
        for (i, item) in items.enumerated() {
            guard case let .scalar(s) = item, tagName(item) != .null, !isCollection(item) else {
                problems.append("\(join(path, key))[\(i)] must be a string, got \(describe(item))\(line(item))")
                continue
            }
            result.append(s.string)  // numbers in args (e.g. 0.5) are kept as written
        }
        return result
    }

    mutating func stringMap(_ map: Node.Mapping, _ path: String, _ key: String) -> [String: String] {
        guard let node = child(map, path, key) else { return [:] }
        guard case let .mapping(pairs) = node else {
            problems.append("\(join(path, key)) must be a mapping of strings, got \(describe(node))\(line(node))")
            return [:]
        }
        var result: [String: String] = [:]
        for (k, v) in pairs {
            guard let name = k.string, case let .scalar(s) = v, tagName(v) == .str else {
                problems.append("\(join(path, key)).\(k.string ?? "?") must be a string; quote it\(line(v))")
                continue
            }
            result[name] = s.string
        }
        return result
    }
}

func isCollection(_ node: Node) -> Bool {
    switch node {
    case .mapping, .sequence: return true
    default: return false
    }
}

/// `path.key`, or `key` at the top level.
func join(_ path: String, _ key: String) -> String {
    path.isEmpty ? key : path + "." + key
}

/// A short description of a node for error messages: its type and, for scalars, its text.
func describe(_ node: Node) -> String {
    switch node {
    case let .scalar(s):
        switch tagName(node) {
        case .int: return "the integer \(s.string)"
        case .float: return "the number \(s.string)"
        case .bool: return "the boolean \(s.string)"
        case .null: return "null"
        default: return "the string \"\(s.string)\""
        }
    case .mapping: return "a mapping"
    case .sequence: return "a list"
    case .alias: return "an alias"
    }
}

/// " (line N)" when the node knows where it came from.
func line(_ node: Node) -> String {
    node.mark.map { " (line \($0.line))" } ?? ""
}

/// A DNS-1123 label (DNS-1035 when it must start with a letter): [a-z0-9-], alphanumeric ends.
public func isDNSLabel(_ s: String, startsWithLetter: Bool) -> Bool {
    guard let first = s.first, let last = s.last else { return false }
    let allowed = s.allSatisfy { ($0.isASCII && ($0.isLowercase || $0.isNumber)) || $0 == "-" }
    let firstOK = startsWithLetter ? (first.isASCII && first.isLowercase) : (first.isASCII && (first.isLowercase || first.isNumber))
    return allowed && firstOK && last != "-"
}

/// The node's resolved tag (str, int, float, bool, null, map, seq).
func tagName(_ node: Node) -> Tag.Name {
    Tag.Name(rawValue: node.tag.rawValue)
}
