// The Kubernetes objects for one FLDeployment: per-role ConfigMaps holding the FLWR_* settings,
// a PersistentVolumeClaim for checkpoints, NetworkPolicies (isolation), the server Service and
// Deployment, and the clients (an Indexed Job, a StatefulSet, or one of either per client:
// DeployWorkloads.swift; their descriptor fields: DeployPlacement.swift). The list `objects()`
// returns is where further kinds (e.g. Secrets) join. Every object carries the same labels, so
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
    /// The token and TLS material to render as Secrets (DeploySecrets.swift); nil: none.
    public var credentials: DeployCredentials?
    /// Render cert-manager Certificates from this Issuer instead of embedding TLS keys.
    public var certManagerIssuer: String?

    /// The command line's overrides (nil: the descriptor's values).
    public init(namespace: String? = nil, image: String? = nil, serviceMonitor: Bool = false,
                credentials: DeployCredentials? = nil, certManagerIssuer: String? = nil) {
        self.namespace = namespace; self.image = image; self.serviceMonitor = serviceMonitor
        self.credentials = credentials; self.certManagerIssuer = certManagerIssuer
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
    /// Where a persistentVolumeClaim of spec.client.data is mounted (a hostPath keeps its own path).
    static let dataDir = stateDir + "/data"
    /// Where the client reads its privatised release (the data volume's `releaseSubPath`, read-only).
    static let releaseMount = stateDir + "/release"
    /// The release and the ledger on the data volume, written by the privatize init container.
    static let releaseSubPath = "flwr-private/release"
    static let ledgerSubPath = "flwr-private/ledger"
    /// The label that tells one client's pods (and workload) from another's when each has its own.
    static let indexLabel = "flwr.dev/client-index"
    /// The default image when neither --image nor spec.*.image is given.
    static let defaultImage = "flwr:\(flwrVersion)"
    /// Size requested for the checkpoints volume.
    static let checkpointStorage = "1Gi"
    /// --http-port of every pod: /healthz, /readyz and /metrics (FlowerOps).
    static let httpPort = 9090
    /// Seconds between SIGTERM and SIGKILL (Kubernetes' default, written out so the contract is
    /// visible in the manifests and a container runtime started from them uses the same).
    static let terminationGracePeriod = 30
}

/// Renders every object of `deployment`, in the order `kubectl apply` should create them
/// (policies before the pods they protect).
public func renderManifests(_ deployment: FLDeployment, options: DeployOptions = .init()) -> [KubeObject] {
    ManifestRenderer(d: deployment, options: options).objects()
}

/// The objects as one multi-document YAML stream for `kubectl apply -f -`.
public func renderYAMLStream(_ objects: [KubeObject]) throws -> String {
    try objects.map { "---\n" + (try $0.body.rendered()) }.joined()
}

struct ManifestRenderer {
    let d: FLDeployment
    let options: DeployOptions

    var namespace: String? { options.namespace ?? d.namespace }
    var serverName: String { d.name + "-server" }
    var clientName: String { d.name + "-client" }

    func objects() -> [KubeObject] {
        var result = secretObjects()
        result += [
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
        result += clientWorkloads()
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
        // Clients on their own data: the server holds none and evaluation happens on the clients.
        if d.client.data != nil { s.append(("FLWR_DATASET", .string("none"))) }
        return s + serverSecretSettings
    }

    /// The clients' FLWR_* variables (flags: --server --num-partitions --data-dir --privacy-budget
    /// --dp-epsilon). The partition is the pod's JOB_COMPLETION_INDEX (FlowerIdentity's IdentityContract).
    /// privacy.budget ε becomes both the ledger's budget and the ε of the one Laplace release the
    /// client makes before training: the whole budget is spent once, up front.
    /// With spec.client.data there are no partition flags: each client trains on all of its own
    /// volume (FLWR_DATASET/FLWR_DATA_DIR), or on the release its init container wrote there.
    var clientSettings: [(String, YAMLValue)] {
        if let data = d.client.data {
            let privateRelease = d.client.privacy != nil
            return [
                ("FLWR_SERVER", .string("\(serverName):\(d.server.port)")),
                ("FLWR_DATASET", .string(privateRelease ? "npz" : data.format)),
                ("FLWR_DATA_DIR", .string(privateRelease ? DeployLayout.releaseMount : dataMountPath(data))),
                ("FLWR_HTTP_PORT", .string(String(DeployLayout.httpPort))),
            ] + clientSecretSettings
        }
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
        return s + clientSecretSettings
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
                                  resources: d.server.resources ?? defaultResources("256Mi"))
        container.append(("ports", .list([.map([("name", .string("flwr")), ("containerPort", .int(d.server.port)),
                                                 ("protocol", .string("TCP"))]), httpContainerPort])))
        // /readyz: listening (never "has its minimum clients": clients reach the server through
        // this Service, which only routes to ready pods). /healthz: every event loop answers.
        container.append(("readinessProbe", httpProbe("/readyz", delay: 2, period: 5)))
        container.append(("livenessProbe", httpProbe("/healthz", delay: 15, period: 20)))
        let secrets = secretMounts(role: "server")
        container.append(("volumeMounts", .list([
            .map([("name", .string("state")), ("mountPath", .string(DeployLayout.stateDir))]),
            .map([("name", .string("tmp")), ("mountPath", .string("/tmp"))]),
        ] + secrets.mounts)))
        let volumes: YAMLValue = .list([
            .map([("name", .string("state")),
                  ("persistentVolumeClaim", .map([("claimName", .string(d.name + "-checkpoints"))]))]),
            .map([("name", .string("tmp")), ("emptyDir", .map([]))]),
        ] + secrets.volumes)
        return object("Deployment", serverName, component: "server", ["spec": .map([
            ("replicas", .int(1)),
            // One writer of the ReadWriteOnce checkpoint volume at a time.
            ("strategy", .map([("type", .string("Recreate"))])),
            ("selector", .map([("matchLabels", selector("server"))])),
            ("template", podTemplate(component: "server", container: container, volumes: volumes,
                                     restartPolicy: "Always", scheduling: serverScheduling)),
        ])])
    }

    /// Today's defaults: 500m CPU and `memory` requested, 2 CPUs and 2Gi at most.
    func defaultResources(_ memory: String) -> YAMLValue {
        .map([
            ("requests", .map([("cpu", .string("500m")), ("memory", .string(memory))])),
            ("limits", .map([("cpu", .string("2")), ("memory", .string("2Gi"))])),
        ])
    }

    func container(role: String, image: String?, pullPolicy: String, args: [String],
                   resources: YAMLValue) -> [(String, YAMLValue)] {
        [
            ("name", .string(role)),
            ("image", .string(image ?? DeployLayout.defaultImage)),
            ("imagePullPolicy", .string(pullPolicy)),
            ("args", .list(([role] + args).map(YAMLValue.string))),
            ("envFrom", .list([.map([("configMapRef", .map([("name", .string(d.name + "-" + role))]))])])),
            ("resources", resources),
            ("securityContext", containerSecurity),
        ]
    }

    /// No privilege escalation, read-only root filesystem, no capabilities; non-root and the
    /// runtime's seccomp profile again at the container (as Flower's Helm chart sets them), so the
    /// container stays restricted when a policy engine or an edit replaces the pod's context.
    var containerSecurity: YAMLValue {
        .map([
                ("allowPrivilegeEscalation", .bool(false)),
                ("readOnlyRootFilesystem", .bool(true)),
                ("runAsNonRoot", .bool(true)),
                ("capabilities", .map([("drop", .list([.string("ALL")]))])),
                ("seccompProfile", .map([("type", .string("RuntimeDefault"))])),
        ])
    }

    /// A pod template. `scheduling`: nodeName, priorityClassName, nodeSelector, affinity,
    /// tolerations, topologySpreadConstraints (as present); `initContainers` run first;
    /// `extraLabels` tell one client's pods from another's.
    func podTemplate(component: String, container: [(String, YAMLValue)], volumes: YAMLValue,
                     restartPolicy: String, scheduling: [(String, YAMLValue)],
                     initContainers: [YAMLValue] = [], extraLabels: [(String, YAMLValue)] = []) -> YAMLValue {
        var spec: [(String, YAMLValue)] = [
            ("restartPolicy", .string(restartPolicy)),
            // No API access, and no Service variables whose names could collide with FLWR_*.
            ("automountServiceAccountToken", .bool(false)),
            ("enableServiceLinks", .bool(false)),
            // SIGTERM, then SIGKILL after this long: flwr stops within it keeping its checkpoint.
            ("terminationGracePeriodSeconds", .int(DeployLayout.terminationGracePeriod)),
            ("securityContext", .map([
                ("runAsNonRoot", .bool(true)),
                ("runAsUser", .int(DeployLayout.user)),
                ("runAsGroup", .int(DeployLayout.user)),
                ("fsGroup", .int(DeployLayout.user)),
                ("seccompProfile", .map([("type", .string("RuntimeDefault"))])),
            ])),
        ]
        spec += scheduling
        if !initContainers.isEmpty { spec.append(("initContainers", .list(initContainers))) }
        spec.append(("containers", .list([.map(container)])))
        spec.append(("volumes", volumes))
        var podLabels = labels(component)
        if case let .map(pairs) = podLabels { podLabels = .map(pairs + extraLabels) }
        return .map([("metadata", .map([("labels", podLabels), ("annotations", scrapeAnnotations)])), ("spec", .map(spec))])
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
        object(kind, name, component: component, extraLabels: [], fields.map { ($0.key, $0.value) })
    }

    func object(_ kind: String, _ name: String, component: String, extraLabels: [(String, YAMLValue)],
                _ fields: [(String, YAMLValue)]) -> KubeObject {
        let apiVersion: String
        switch kind {
        case "Deployment": apiVersion = "apps/v1"
        case "Job": apiVersion = "batch/v1"
        case "StatefulSet": apiVersion = "apps/v1"
        case "NetworkPolicy": apiVersion = "networking.k8s.io/v1"
        case "ServiceMonitor": apiVersion = "monitoring.coreos.com/v1"
        case "Certificate": apiVersion = "cert-manager.io/v1"
        default: apiVersion = "v1"
        }
        var metadata: [(String, YAMLValue)] = [("name", .string(name))]
        if let namespace { metadata.append(("namespace", .string(namespace))) }
        if case let .map(pairs) = labels(component) { metadata.append(("labels", .map(pairs + extraLabels))) }
        if !d.annotations.isEmpty {
            metadata.append(("annotations", .map(d.annotations.sorted { $0.key < $1.key }
                .map { ($0.key, YAMLValue.string($0.value)) })))
        }
        let body: [(String, YAMLValue)] = [("apiVersion", .string(apiVersion)), ("kind", .string(kind)),
                                           ("metadata", .map(metadata))] + fields
        return KubeObject(kind: kind, name: name, body: .map(body))
    }
}

/// A number as a flag value: integers without a fraction (`1`), others as Swift prints them (`0.7`).
func formatNumber(_ x: Double) -> String {
    if x == x.rounded(), abs(x) < 1e15 { return String(Int(x)) }
    return "\(x)"
}
