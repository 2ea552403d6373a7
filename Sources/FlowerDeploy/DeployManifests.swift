// The Kubernetes objects for one FLDeployment: per-role ConfigMaps holding the FLWR_* settings,
// a PersistentVolumeClaim for checkpoints, NetworkPolicies (isolation), the server Service and
// Deployment, and the clients as one Indexed Job. Every object carries the same labels, so
// `kubectl delete all,cm,pvc,netpol -l app.kubernetes.io/instance=<name>` removes exactly them.
//
// Settings travel as FLWR_* variables (Environment.swift turns them into flags), one ConfigMap per
// role so the server never sees the clients' settings and vice versa; the containers' args are
// only the subcommand plus the descriptor's `args`.
import FlowerCore

/// One rendered object.
public struct KubeObject: Equatable, Sendable {
    /// Its kind, e.g. `Deployment`.
    public var kind: String
    /// metadata.name.
    public var name: String
    /// The whole object.
    public var body: YAMLValue

    /// The file `--output-dir` writes it to; the number keeps `kubectl apply -f DIR` in order.
    public func fileName(position: Int) -> String {
        let number = position < 9 ? "0\(position + 1)" : "\(position + 1)"
        return "\(number)-\(kind.lowercased())-\(name).yaml"
    }
}

/// What the command line adds to a descriptor.
public struct DeployOptions: Equatable, Sendable {
    /// Overrides metadata.namespace.
    public var namespace: String?
    /// Overrides spec.server.image and spec.client.image.
    public var image: String?
    /// Also render a prometheus-operator ServiceMonitor scraping the server's /metrics.
    public var serviceMonitor: Bool

    /// The command line's overrides (nil: the descriptor's values).
    public init(namespace: String? = nil, image: String? = nil, serviceMonitor: Bool = false) {
        self.namespace = namespace; self.image = image; self.serviceMonitor = serviceMonitor
    }
}

/// Paths and identities inside the container (deploy/Dockerfile creates them).
enum DeployLayout {
    /// The uid/gid of the image's non-root user.
    static let user = 10001
    /// The server's state volume (the checkpoints PVC) and every pod's working directory.
    static let stateDir = "/var/lib/flwr"
    /// --checkpoint-dir, on the PVC.
    static let checkpointDir = stateDir + "/checkpoints"
    /// --metrics-out, on the PVC.
    static let metricsOut = stateDir + "/metrics.jsonl"
    /// --model-out, on the PVC.
    static let modelOut = stateDir + "/model.npz"
    /// The default image when neither --image nor spec.*.image is given.
    static let defaultImage = "flwr:\(flwrVersion)"
    /// Size requested for the checkpoints volume.
    static let checkpointStorage = "1Gi"
    /// --http-port of every pod: /healthz, /readyz and /metrics (FlowerOps).
    static let httpPort = 9090
}

/// Renders every object of `deployment`, in the order `kubectl apply` should create them
/// (policies before the pods they protect).
public func renderManifests(_ deployment: FLDeployment, options: DeployOptions = .init()) -> [KubeObject] {
    ManifestRenderer(d: deployment, options: options).objects()
}

/// The objects as one multi-document YAML stream for `kubectl apply -f -`.
public func renderYAMLStream(_ objects: [KubeObject]) -> String {
    objects.map { "---\n" + $0.body.rendered() }.joined()
}

private struct ManifestRenderer {
    let d: FLDeployment
    let options: DeployOptions

    var namespace: String? { options.namespace ?? d.namespace }
    var serverName: String { d.name + "-server" }
    var clientName: String { d.name + "-client" }

    func objects() -> [KubeObject] {
        var result = [
            object("ConfigMap", serverName, component: "server", ["data": .map(serverSettings)]),
            object("ConfigMap", clientName, component: "client", ["data": .map(clientSettings)]),
            object("PersistentVolumeClaim", d.name + "-checkpoints", component: "server", ["spec": .map([
                ("accessModes", .list([.string("ReadWriteOnce")])),
                ("resources", .map([("requests", .map([("storage", .string(DeployLayout.checkpointStorage))]))])),
            ])]),
        ]
        if d.client.isolation { result += networkPolicies() }
        result.append(object("Service", serverName, component: "server", ["spec": .map([
            ("type", .string("ClusterIP")),
            ("selector", selector("server")),
            ("ports", .list([.map([
                ("name", .string("flwr")), ("protocol", .string("TCP")),
                ("port", .int(d.server.port)), ("targetPort", .int(d.server.port)),
            ]), .map([
                ("name", .string("http")), ("protocol", .string("TCP")),
                ("port", .int(DeployLayout.httpPort)), ("targetPort", .string("http")),
            ])])),
        ])]))
        result.append(serverDeployment())
        result.append(clientJob())
        if options.serviceMonitor { result.append(serviceMonitor()) }
        return result
    }

    // MARK: settings

    /// The server's FLWR_* variables (flags: --port --rounds --min-clients --checkpoint-dir --resume
    /// --metrics-out --model-out --data-dir).
    var serverSettings: [(String, YAMLValue)] {
        var s: [(String, YAMLValue)] = [
            ("FLWR_PORT", .string(String(d.server.port))),
            ("FLWR_HTTP_PORT", .string(String(DeployLayout.httpPort))),
            ("FLWR_ROUNDS", .string(String(d.server.rounds))),
            ("FLWR_MIN_CLIENTS", .string(String(d.minClients))),
            ("FLWR_CHECKPOINT_DIR", .string(DeployLayout.checkpointDir)),
            ("FLWR_RESUME", .string("true")),
            // A Deployment restarts a pod that exits: after the last round the server stays up
            // and answers late or restarted clients with Finish until the pod is deleted.
            ("FLWR_LINGER", .string("true")),
            ("FLWR_METRICS_OUT", .string(DeployLayout.metricsOut)),
            ("FLWR_MODEL_OUT", .string(DeployLayout.modelOut)),
        ]
        if let path = d.client.datasetPath { s.append(("FLWR_DATA_DIR", .string(path))) }
        return s
    }

    /// The clients' FLWR_* variables (flags: --server --num-partitions --data-dir --privacy-budget
    /// --dp-epsilon). The partition is the pod's JOB_COMPLETION_INDEX (PartitionResolver.swift).
    /// privacy.budget ε becomes both the ledger's budget and the ε of the one Laplace release the
    /// client makes before training: the whole budget is spent once, up front.
    var clientSettings: [(String, YAMLValue)] {
        var s: [(String, YAMLValue)] = [
            ("FLWR_SERVER", .string("\(serverName):\(d.server.port)")),
            ("FLWR_NUM_PARTITIONS", .string(String(d.client.numClients))),
            ("FLWR_HTTP_PORT", .string(String(DeployLayout.httpPort))),
        ]
        if let path = d.client.datasetPath { s.append(("FLWR_DATA_DIR", .string(path))) }
        if let privacy = d.client.privacy {
            s.append(("FLWR_PRIVACY_BUDGET", .string(formatNumber(privacy.budget))))
            s.append(("FLWR_DP_EPSILON", .string(formatNumber(privacy.budget))))
            // The root filesystem is read-only: the ledger lives on the client's emptyDir.
            s.append(("FLWR_LEDGER_DIR", .string(DeployLayout.stateDir + "/privacy")))
        }
        return s
    }

    // MARK: isolation

    /// Clients: egress only to the server pods' port and to DNS, no ingress at all.
    /// Server: ingress only from this deployment's clients, on its port.
    func networkPolicies() -> [KubeObject] {
        let serverPort: YAMLValue = .list([.map([("protocol", .string("TCP")), ("port", .int(d.server.port))])])
        let dnsPorts: YAMLValue = .list([
            .map([("protocol", .string("UDP")), ("port", .int(53))]),
            .map([("protocol", .string("TCP")), ("port", .int(53))]),
        ])
        return [
            object("NetworkPolicy", d.name + "-client-isolation", component: "client", ["spec": .map([
                ("podSelector", .map([("matchLabels", selector("client"))])),
                ("policyTypes", .list([.string("Ingress"), .string("Egress")])),
                ("ingress", .list([])),
                ("egress", .list([
                    .map([("to", .list([.map([("podSelector", .map([("matchLabels", selector("server"))]))])])),
                          ("ports", serverPort)]),
                    .map([("ports", dnsPorts)]),
                ])),
            ])]),
            object("NetworkPolicy", d.name + "-server-ingress", component: "server", ["spec": .map([
                ("podSelector", .map([("matchLabels", selector("server"))])),
                ("policyTypes", .list([.string("Ingress")])),
                ("ingress", .list([.map([
                    ("from", .list([.map([("podSelector", .map([("matchLabels", selector("client"))]))])])),
                    ("ports", serverPort),
                ])])),
            ])]),
        ]
    }

    // MARK: workloads

    func serverDeployment() -> KubeObject {
        var container = container(role: "server", image: options.image ?? d.server.image,
                                  pullPolicy: d.server.imagePullPolicy, args: d.server.args,
                                  resources: ("500m", "256Mi", "2", "2Gi"))
        container.append(("ports", .list([.map([("name", .string("flwr")), ("containerPort", .int(d.server.port)),
                                                 ("protocol", .string("TCP"))]), httpContainerPort])))
        // /readyz: listening (never "has its minimum clients": clients reach the server through
        // this Service, which only routes to ready pods). /healthz: every event loop answers.
        container.append(("readinessProbe", httpProbe("/readyz", delay: 2, period: 5)))
        container.append(("livenessProbe", httpProbe("/healthz", delay: 15, period: 20)))
        container.append(("volumeMounts", .list([
            .map([("name", .string("state")), ("mountPath", .string(DeployLayout.stateDir))]),
            .map([("name", .string("tmp")), ("mountPath", .string("/tmp"))]),
        ])))
        let volumes: YAMLValue = .list([
            .map([("name", .string("state")),
                  ("persistentVolumeClaim", .map([("claimName", .string(d.name + "-checkpoints"))]))]),
            .map([("name", .string("tmp")), ("emptyDir", .map([]))]),
        ])
        return object("Deployment", serverName, component: "server", ["spec": .map([
            ("replicas", .int(1)),
            // One writer of the ReadWriteOnce checkpoint volume at a time.
            ("strategy", .map([("type", .string("Recreate"))])),
            ("selector", .map([("matchLabels", selector("server"))])),
            ("template", podTemplate(component: "server", container: container, volumes: volumes,
                                     restartPolicy: "Always", nodeName: d.server.nodeName)),
        ])])
    }

    func clientJob() -> KubeObject {
        var container = container(role: "client", image: options.image ?? d.client.image,
                                  pullPolicy: d.client.imagePullPolicy, args: d.client.args,
                                  resources: ("500m", "512Mi", "2", "2Gi"))
        container.append(("ports", .list([httpContainerPort])))
        // /readyz: connected and registered with the server; /healthz: every event loop answers.
        container.append(("readinessProbe", httpProbe("/readyz", delay: 2, period: 10)))
        container.append(("livenessProbe", httpProbe("/healthz", delay: 15, period: 20)))
        container.append(("volumeMounts", .list([
            .map([("name", .string("work")), ("mountPath", .string(DeployLayout.stateDir))]),
            .map([("name", .string("tmp")), ("mountPath", .string("/tmp"))]),
        ])))
        let volumes: YAMLValue = .list([
            .map([("name", .string("work")), ("emptyDir", .map([]))]),
            .map([("name", .string("tmp")), ("emptyDir", .map([]))]),
        ])
        return object("Job", clientName, component: "client", ["spec": .map([
            ("completionMode", .string("Indexed")),
            ("completions", .int(d.client.numClients)),
            ("parallelism", .int(d.client.numClients)),
            ("backoffLimit", .int(max(6, 3 * d.client.numClients))),
            ("template", podTemplate(component: "client", container: container, volumes: volumes,
                                     restartPolicy: "OnFailure", nodeName: d.client.nodeName)),
        ])])
    }

    func container(role: String, image: String?, pullPolicy: String, args: [String],
                   resources: (cpu: String, memory: String, cpuLimit: String, memoryLimit: String))
        -> [(String, YAMLValue)] {
        [
            ("name", .string(role)),
            ("image", .string(image ?? DeployLayout.defaultImage)),
            ("imagePullPolicy", .string(pullPolicy)),
            ("args", .list(([role] + args).map(YAMLValue.string))),
            ("envFrom", .list([.map([("configMapRef", .map([("name", .string(d.name + "-" + role))]))])])),
            ("resources", .map([
                ("requests", .map([("cpu", .string(resources.cpu)), ("memory", .string(resources.memory))])),
                ("limits", .map([("cpu", .string(resources.cpuLimit)), ("memory", .string(resources.memoryLimit))])),
            ])),
            ("securityContext", .map([
                ("allowPrivilegeEscalation", .bool(false)),
                ("readOnlyRootFilesystem", .bool(true)),
                ("capabilities", .map([("drop", .list([.string("ALL")]))])),
            ])),
        ]
    }

    func podTemplate(component: String, container: [(String, YAMLValue)], volumes: YAMLValue,
                     restartPolicy: String, nodeName: String?) -> YAMLValue {
        var spec: [(String, YAMLValue)] = [
            ("restartPolicy", .string(restartPolicy)),
            // No API access, and no Service variables whose names could collide with FLWR_*.
            ("automountServiceAccountToken", .bool(false)),
            ("enableServiceLinks", .bool(false)),
            ("securityContext", .map([
                ("runAsNonRoot", .bool(true)),
                ("runAsUser", .int(DeployLayout.user)),
                ("runAsGroup", .int(DeployLayout.user)),
                ("fsGroup", .int(DeployLayout.user)),
                ("seccompProfile", .map([("type", .string("RuntimeDefault"))])),
            ])),
        ]
        if let nodeName { spec.append(("nodeName", .string(nodeName))) }
        spec.append(("containers", .list([.map(container)])))
        spec.append(("volumes", volumes))
        return .map([("metadata", .map([("labels", labels(component)), ("annotations", scrapeAnnotations)])),
                     ("spec", .map(spec))])
    }

    // MARK: operations (FlowerOps' HTTP listener)

    /// The container port of the operations listener.
    var httpContainerPort: YAMLValue {
        .map([("name", .string("http")), ("containerPort", .int(DeployLayout.httpPort)), ("protocol", .string("TCP"))])
    }

    /// An HTTP GET probe on the operations port.
    func httpProbe(_ path: String, delay: Int, period: Int) -> YAMLValue {
        .map([("httpGet", .map([("path", .string(path)), ("port", .string("http"))])),
              ("initialDelaySeconds", .int(delay)), ("periodSeconds", .int(period)),
              ("timeoutSeconds", .int(5)), ("failureThreshold", .int(3))])
    }

    /// The annotations Prometheus' usual `kubernetes-pods` scrape configuration reads.
    var scrapeAnnotations: YAMLValue {
        .map([("prometheus.io/scrape", .string("true")), ("prometheus.io/port", .string(String(DeployLayout.httpPort))),
              ("prometheus.io/path", .string("/metrics"))])
    }

    /// A prometheus-operator ServiceMonitor scraping the server Service's `http` port.
    func serviceMonitor() -> KubeObject {
        object("ServiceMonitor", serverName, component: "server", ["spec": .map([
            ("selector", .map([("matchLabels", selector("server"))])),
            ("endpoints", .list([.map([("port", .string("http")), ("path", .string("/metrics")),
                                       ("interval", .string("15s"))])])),
        ])])
    }

    // MARK: metadata

    /// The labels that select one role's pods.
    func selector(_ component: String) -> YAMLValue {
        .map([
            ("app.kubernetes.io/name", .string("flwr")),
            ("app.kubernetes.io/instance", .string(d.name)),
            ("app.kubernetes.io/component", .string(component)),
        ])
    }

    /// The descriptor's labels, then ours (ours win: selectors depend on them).
    func labels(_ component: String) -> YAMLValue {
        guard case let .map(ours) = selector(component) else { return selector(component) }
        let extra = d.labels.filter { key, _ in !ours.contains { $0.0 == key } }
            .sorted { $0.key < $1.key }.map { ($0.key, YAMLValue.string($0.value)) }
        return .map(extra + ours + [("app.kubernetes.io/managed-by", .string("flwr-deploy"))])
    }

    func object(_ kind: String, _ name: String, component: String,
                _ fields: KeyValuePairs<String, YAMLValue>) -> KubeObject {
        let apiVersion: String
        switch kind {
        case "Deployment": apiVersion = "apps/v1"
        case "Job": apiVersion = "batch/v1"
        case "NetworkPolicy": apiVersion = "networking.k8s.io/v1"
        case "ServiceMonitor": apiVersion = "monitoring.coreos.com/v1"
        default: apiVersion = "v1"
        }
        var metadata: [(String, YAMLValue)] = [("name", .string(name))]
        if let namespace { metadata.append(("namespace", .string(namespace))) }
        metadata.append(("labels", labels(component)))
        if !d.annotations.isEmpty {
            metadata.append(("annotations", .map(d.annotations.sorted { $0.key < $1.key }
                .map { ($0.key, YAMLValue.string($0.value)) })))
        }
        let body: [(String, YAMLValue)] = [("apiVersion", .string(apiVersion)), ("kind", .string(kind)),
                                           ("metadata", .map(metadata))] + fields.map { ($0.key, $0.value) }
        return KubeObject(kind: kind, name: name, body: .map(body))
    }
}

/// A number as a flag value: integers without a fraction (`1`), others as Swift prints them (`0.7`).
func formatNumber(_ x: Double) -> String {
    if x == x.rounded(), abs(x) < 1e15 { return String(Int(x)) }
    return "\(x)"
}
