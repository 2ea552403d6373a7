// `flwr deploy`: an FLDeployment descriptor in, Kubernetes manifests out (stdout or one file per
// object), for `flwr deploy -f flwr-deploy.yaml | kubectl apply -f -`.
import ArgumentParser
import FlowerDeploy
import FlowerRuntime

/// The `flwr deploy` subcommand.
struct Deploy: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deploy",
        abstract: "Render Kubernetes manifests from a kubeFlower-compatible FLDeployment descriptor.",
        discussion: """
            Reads apiVersion flwr.dev/v1, kind FLDeployment (kubeFlower's custom resource) and prints \
            a ConfigMap per role, a PersistentVolumeClaim for checkpoints, the server Deployment and \
            Service, the clients as one Indexed Job (partition = JOB_COMPLETION_INDEX) and, with \
            spec.client.isolation (default true), NetworkPolicies: clients may reach only the \
            server's port and DNS, nothing may reach a client. Apply with \
            `flwr deploy -f flwr-deploy.yaml | kubectl apply -f -`; remove with \
            `kubectl delete all,cm,pvc,netpol -l app.kubernetes.io/instance=NAME`.
            spec.client.privacy.budget ε sets FLWR_PRIVACY_BUDGET and FLWR_DP_EPSILON for every \
            client: each privatises its data once with ε = budget before training.
            Clients on their own data (deploy/README.md, "Edge sites"): spec.client.data \
            (hostPath: PATH on every node, or persistentVolumeClaim: PREFIX, claim PREFIX-i for client i) \
            makes each client train on all of its volume, with privacy as an init container writing \
            the release and its ledger on that volume; spec.client.placement (one \
            nodeSelector/affinity, or a list by index), tolerations, resources and \
            priorityClassName place the pods; two clients never share a node unless \
            spec.client.allowSharedNodes is true; spec.client.restartPolicy: Always runs the \
            clients as a StatefulSet (pods NAME-client-i). Clients that differ by index (a claim \
            each, or per-index placement) get one Job or StatefulSet each, NAME-client-i.
            """
    )

    @Option(name: [.customShort("f"), .customLong("file")], help: "The FLDeployment descriptor (YAML); - for stdin.") var file: String
    @Option(help: "Write one YAML file per object into this directory (created if missing) instead of stdout.") var outputDir: String?
    @Option(help: "Namespace for every object (overrides metadata.namespace).") var namespace: String?
    @Option(help: "Container image for server and clients (overrides spec.server.image and spec.client.image).") var image: String?
    @Flag(help: "Also render a prometheus-operator ServiceMonitor that scrapes the server's /metrics (needs the monitoring.coreos.com CRDs in the cluster).") var serviceMonitor = false
    @Option(help: "With spec.tls (default true): render cert-manager Certificate objects issued by this Issuer (in the deployment's namespace) instead of Secrets holding keys made here.") var certManager: String?

    func validate() throws { try validating { try config.validate() } }

    func run() throws { try DeployRendering(config: config).run() }

    /// The library's form of these flags.
    var config: DeployRenderConfig {
        var c = DeployRenderConfig(file: file)
        c.outputDir = outputDir; c.namespace = namespace; c.image = image
        c.serviceMonitor = serviceMonitor; c.certManager = certManager
        return c
    }
}
