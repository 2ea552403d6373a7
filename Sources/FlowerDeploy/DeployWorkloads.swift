// The client workloads and the scheduling fields of every pod.
//
// Clients run as
//   - one Indexed Job `NAME-client` (restartPolicy OnFailure/Never), or one StatefulSet
//     `NAME-client` behind a headless Service (restartPolicy Always), when every client's pod is
//     the same: pods are NAME-client-0 … NAME-client-(N-1), and that hostname is the client's
//     identity (and its partition in simulation-style runs);
//   - one Job or StatefulSet per client, `NAME-client-i`, when clients differ (one claim
//     PREFIX-i each, or a placement per index): a pod template cannot vary by index. Those pods get
//     FLWR_CLIENT_ID=NAME-client-i (and FLWR_PARTITION=i when partitioning) so identities stay stable.
// With spec.client.data the client trains on everything on its volume (no partition flags); with
// privacy as well, an init container `privatize` on the same pod (so the same node and volume)
// writes the Laplace release and its ledger on that volume first, and the client mounts only the
// release. Two clients never share a node unless spec.client.allowSharedNodes says they may.

import FlowerIdentity

extension ManifestRenderer {
    /// The server pod's scheduling fields.
    var serverScheduling: [(String, YAMLValue)] {
        scheduling(nodeName: d.server.nodeName, priorityClassName: d.server.priorityClassName,
                   placement: d.server.placement, tolerations: d.server.tolerations, spreadClients: false)
    }

    /// The client Job(s) or StatefulSet(s), after the headless Service a StatefulSet needs.
    func clientWorkloads() -> [KubeObject] {
        let stateful = d.client.restartPolicy == "Always"
        var result: [KubeObject] = []
        if stateful {
            // A StatefulSet's governing Service: stable DNS names NAME-client-i.NAME-client.
            result.append(object("Service", clientName, component: "client", ["spec": .map([
                ("clusterIP", .string("None")),
                ("selector", selector("client")),
            ])]))
        }
        if !d.clientsArePerIndex {
            let template = clientPodTemplate(index: nil)
            if stateful {
                result.append(object("StatefulSet", clientName, component: "client", ["spec": .map([
                    ("serviceName", .string(clientName)),
                    ("replicas", .int(d.client.numClients)),
                    ("podManagementPolicy", .string("Parallel")),
                    ("selector", .map([("matchLabels", selector("client"))])),
                    ("template", template),
                ])]))
            } else {
                result.append(object("Job", clientName, component: "client", ["spec": .map([
                    ("completionMode", .string("Indexed")),
                    ("completions", .int(d.client.numClients)),
                    ("parallelism", .int(d.client.numClients)),
                    ("backoffLimit", .int(max(6, 3 * d.client.numClients))),
                    ("template", template),
                ])]))
            }
            return result
        }
        for index in 0 ..< d.client.numClients {
            let name = "\(clientName)-\(index)"
            let indexLabel: [(String, YAMLValue)] = [(DeployLayout.indexLabel, .string(String(index)))]
            let template = clientPodTemplate(index: index)
            if stateful {
                guard case let .map(matchLabels) = selector("client") else { continue }
                result.append(object("StatefulSet", name, component: "client", extraLabels: indexLabel, [("spec", .map([
                    ("serviceName", .string(clientName)),
                    ("replicas", .int(1)),
                    ("selector", .map([("matchLabels", .map(matchLabels + indexLabel))])),
                    ("template", template),
                ]))]))
            } else {
                result.append(object("Job", name, component: "client", extraLabels: indexLabel, [("spec", .map([
                    ("completions", .int(1)),
                    ("parallelism", .int(1)),
                    ("backoffLimit", .int(6)),
                    ("template", template),
                ]))]))
            }
        }
        return result
    }

    /// Where the client's data volume is mounted: a hostPath at its own path, a claim at `DeployLayout.dataDir`.
    func dataMountPath(_ data: ClientData) -> String {
        switch data.volume {
        case let .hostPath(path): return path
        case .persistentVolumeClaim: return DeployLayout.dataDir
        }
    }

    /// The pod template of every client (`index` nil) or of client `index`.
    func clientPodTemplate(index: Int?) -> YAMLValue {
        let resources = d.client.resources ?? defaultResources("512Mi")
        var container = container(role: "client", image: options.image ?? d.client.image,
                                  pullPolicy: d.client.imagePullPolicy, args: d.client.args, resources: resources)
        if let index {
            var env: [YAMLValue] = [.map([("name", .string(IdentityContract.clientIDVariable)), ("value", .string("\(clientName)-\(index)"))])]
            if d.client.data == nil {
                env.append(.map([("name", .string(IdentityContract.partitionVariable)), ("value", .string(String(index)))]))
            }
            container.insert(("env", .list(env)), at: 4)  // after args, before envFrom
        }
        var mounts: [YAMLValue] = [
            .map([("name", .string("work")), ("mountPath", .string(DeployLayout.stateDir))]),
            .map([("name", .string("tmp")), ("mountPath", .string("/tmp"))]),
        ]
        var volumes: [YAMLValue] = [
            .map([("name", .string("work")), ("emptyDir", .map([]))]),
            .map([("name", .string("tmp")), ("emptyDir", .map([]))]),
        ]
        var initContainers: [YAMLValue] = []
        if let data = d.client.data {
            let mountPath = dataMountPath(data)
            if let privacy = d.client.privacy {
                // The client sees only the release, never the raw data or the ledger (it holds the seeds).
                mounts.append(.map([("name", .string("data")), ("mountPath", .string(DeployLayout.releaseMount)),
                                    ("subPath", .string(DeployLayout.releaseSubPath)), ("readOnly", .bool(true))]))
                initContainers.append(privatizeContainer(data: data, mountPath: mountPath, budget: privacy.budget,
                                                         resources: resources))
            } else {
                mounts.append(.map([("name", .string("data")), ("mountPath", .string(mountPath)), ("readOnly", .bool(true))]))
            }
            switch data.volume {
            case let .hostPath(path):
                volumes.append(.map([("name", .string("data")),
                                     ("hostPath", .map([("path", .string(path)), ("type", .string("Directory"))]))]))
            case let .persistentVolumeClaim(prefix):
                // Per-client data always renders one workload per index.
                let claim = "\(prefix)-\(index ?? 0)"
                volumes.append(.map([("name", .string("data")),
                                     ("persistentVolumeClaim", .map([("claimName", .string(claim))]))]))
            }
        }
        container.append(("ports", .list([httpContainerPort])))
        // /readyz: connected and registered with the server; /healthz: every event loop answers.
        container.append(("readinessProbe", httpProbe("/readyz", delay: 2, period: 10)))
        container.append(("livenessProbe", httpProbe("/healthz", delay: 15, period: 20)))
        let secrets = secretMounts(role: "client")
        mounts += secrets.mounts
        volumes += secrets.volumes
        container.append(("volumeMounts", .list(mounts)))
        let stateful = d.client.restartPolicy == "Always"
        let placement = index.flatMap { d.client.placement?.placement(index: $0) }
            ?? (d.clientsArePerIndex ? nil : d.client.placement?.placement(index: 0))
        return podTemplate(component: "client", container: container, volumes: .list(volumes),
                           restartPolicy: stateful ? "Always" : d.client.restartPolicy,
                           scheduling: scheduling(nodeName: d.client.nodeName, priorityClassName: d.client.priorityClassName,
                                                  placement: placement, tolerations: d.client.tolerations,
                                                  spreadClients: true),
                           initContainers: initContainers,
                           extraLabels: index.map { [(DeployLayout.indexLabel, .string(String($0)))] } ?? [])
    }

    /// `flwr privatize` on the client's own volume: the whole of it, ε = budget, the ledger beside
    /// it; `--resume` re-creates an earlier release after a restart instead of spending again;
    /// the site's test set (if any) is copied un-noised for the client's own evaluation.
    func privatizeContainer(data: ClientData, mountPath: String, budget: Double, resources: YAMLValue) -> YAMLValue {
        let epsilon = formatNumber(budget)
        let base = mountPath.hasSuffix("/") ? mountPath : mountPath + "/"
        return .map([
            ("name", .string("privatize")),
            ("image", .string(options.image ?? d.client.image ?? DeployLayout.defaultImage)),
            ("imagePullPolicy", .string(d.client.imagePullPolicy)),
            ("args", .list(["privatize", "--dataset", data.format, "--data-dir", mountPath,
                            "--out", base + DeployLayout.releaseSubPath, "--ledger-dir", base + DeployLayout.ledgerSubPath,
                            "--dp-epsilon", epsilon, "--privacy-budget", epsilon, "--resume", "--include-test"].map(YAMLValue.string))),
            ("resources", resources),
            ("securityContext", containerSecurity),
            ("volumeMounts", .list([
                .map([("name", .string("data")), ("mountPath", .string(mountPath))]),
                .map([("name", .string("tmp")), ("mountPath", .string("/tmp"))]),
            ])),
        ])
    }

    /// nodeName, priorityClassName, nodeSelector, affinity, tolerations and, for clients, the rule
    /// that keeps two clients off one node (required anti-affinity) or spreads them when allowed.
    func scheduling(nodeName: String?, priorityClassName: String?, placement: Placement?,
                    tolerations: [YAMLValue], spreadClients: Bool) -> [(String, YAMLValue)] {
        var fields: [(String, YAMLValue)] = []
        if let nodeName { fields.append(("nodeName", .string(nodeName))) }
        if let priorityClassName { fields.append(("priorityClassName", .string(priorityClassName))) }
        if let selector = placement?.nodeSelector, !selector.isEmpty {
            fields.append(("nodeSelector", .map(selector.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) })))
        }
        var affinity = placement?.affinity
        if spreadClients && !d.client.allowSharedNodes {
            let term: YAMLValue = .map([
                ("labelSelector", .map([("matchLabels", selector("client"))])),
                ("topologyKey", .string("kubernetes.io/hostname")),
            ])
            affinity = appending(term, to: affinity, at: ["podAntiAffinity", "requiredDuringSchedulingIgnoredDuringExecution"])
        }
        if let affinity { fields.append(("affinity", affinity)) }
        if !tolerations.isEmpty { fields.append(("tolerations", .list(tolerations))) }
        if spreadClients && d.client.allowSharedNodes {
            fields.append(("topologySpreadConstraints", .list([.map([
                ("maxSkew", .int(1)),
                ("topologyKey", .string("kubernetes.io/hostname")),
                ("whenUnsatisfiable", .string("ScheduleAnyway")),
                ("labelSelector", .map([("matchLabels", selector("client"))])),
            ])])))
        }
        return fields
    }
}

/// `value` with `item` appended to the list at `path` (maps and the list created as needed).
func appending(_ item: YAMLValue, to value: YAMLValue?, at path: [String]) -> YAMLValue {
    guard let key = path.first else {
        if case let .list(items)? = value { return .list(items + [item]) }
        return .list([item])
    }
    var pairs: [(String, YAMLValue)] = []
    if case let .map(existing)? = value { pairs = existing }
    if let position = pairs.firstIndex(where: { $0.0 == key }) {
        pairs[position].1 = appending(item, to: pairs[position].1, at: Array(path.dropFirst()))
    } else {
        pairs.append((key, appending(item, to: nil, at: Array(path.dropFirst()))))
    }
    return .map(pairs)
}
