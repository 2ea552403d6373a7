// `flwr deploy`: an FLDeployment descriptor in, Kubernetes manifests out (stdout or one file per
// object), for `flwr deploy -f flwr-deploy.yaml | kubectl apply -f -`.
import ArgumentParser
import FlowerDeploy
import FlowerTLS
import Foundation

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

    /// The descriptor.
    @Option(name: [.customShort("f"), .customLong("file")], help: "The FLDeployment descriptor (YAML); - for stdin.")
    var file: String

    /// Where to write one file per object instead of printing.
    @Option(help: "Write one YAML file per object into this directory (created if missing) instead of stdout.")
    var outputDir: String?

    /// Overrides metadata.namespace.
    @Option(help: "Namespace for every object (overrides metadata.namespace).")
    var namespace: String?

    /// Overrides spec.server.image and spec.client.image.
    @Option(help: "Container image for server and clients (overrides spec.server.image and spec.client.image).")
    var image: String?

    @Flag(help: "Also render a prometheus-operator ServiceMonitor that scrapes the server's /metrics (needs the monitoring.coreos.com CRDs in the cluster).")
    var serviceMonitor = false

    @Option(help: "With spec.tls (default true): render cert-manager Certificate objects issued by this Issuer (in the deployment's namespace) instead of Secrets holding keys made here.")
    var certManager: String?

    func validate() throws {
        if let namespace, !isDNSLabel(namespace, startsWithLetter: false) || namespace.count > 63 {
            throw ValidationError("--namespace \"\(namespace)\" is not a Kubernetes namespace name; "
                + "use lowercase letters, digits and '-' (at most 63)")
        }
        if let image, image.isEmpty || image.contains(where: \.isWhitespace) {
            throw ValidationError("--image \"\(image)\" is not an image reference; e.g. registry.example/flwr:0.1.0")
        }
    }

    func run() throws {
        let text: String
        do {
            text = file == "-"
                ? String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
                : try String(contentsOfFile: file, encoding: .utf8)
        } catch {
            throw DeployFileError(message: "cannot read the descriptor \(file) (\(error.localizedDescription)); "
                + "pass an existing FLDeployment YAML file with -f")
        }
        let deployment = try FLDeployment.parse(yaml: text)
        // Notes go to stderr: stdout carries the manifests for `kubectl apply -f -`.
        if deployment.client.port != nil {
            note("spec.client.port is ignored: flwr clients dial the server (their only listener is the probes and metrics port, 9090)")
        }
        let credentials = try deployCredentials(deployment)
        let objects = renderManifests(deployment, options: DeployOptions(namespace: namespace, image: image,
                                                                         serviceMonitor: serviceMonitor,
                                                                         credentials: credentials, certManagerIssuer: certManager))
        if let outputDir {
            let written = try writeManifests(objects, to: outputDir)
            note("wrote \(written.count) objects to \(outputDir)")
        } else {
            FileHandle.standardOutput.write(Data(renderYAMLStream(objects).utf8))
        }
    }
}

extension Deploy {
    /// A fresh random token and, with spec.tls and no --cert-manager, a CA with the server's and
    /// every client's certificate (FlowerDeploy/DeploySecrets.swift says which clients get one).
    func deployCredentials(_ d: FLDeployment) throws -> DeployCredentials {
        var c = DeployCredentials(token: randomAuthToken())
        guard d.tls else {
            note("spec.tls is false: clients prove the auth token, but models cross the network unencrypted")
            return c
        }
        let identities = d.clientIdentities
        if identities == nil {
            note("clients on their own data in one Indexed Job have no identity known before they start: server TLS and the auth token only (no client certificates); give each client its own workload for mutual TLS")
        }
        guard certManager == nil else { return c }
        let pem = try FederationPEM.make(serverNames: d.serverNames(namespace: namespace), clientIdentities: identities ?? [])
        c.caPEM = pem.ca
        c.serverCertificatePEM = pem.serverCertificate
        c.serverKeyPEM = pem.serverKey
        c.clients = pem.clients.map { ClientCredential(identity: $0.identity, certificatePEM: $0.certificate, keyPEM: $0.key) }
        return c
    }
}

/// One line on stderr for the operator.
private func note(_ message: String) {
    FileHandle.standardError.write(Data("flwr deploy: \(message)\n".utf8))
}
