// `flwr deploy`: an FLDeployment descriptor in, Kubernetes manifests out, with the credentials a
// secure deployment needs made here (a random auth token; with spec.tls and no cert-manager a CA,
// the server's certificate and one per client whose identity is known at render time).
import FlowerDeploy
import FlowerTLS
import Foundation

/// What to render and where.
public struct DeployRenderConfig: Sendable {
    /// The descriptor's path, or "-" for stdin.
    public var file: String
    public var outputDir: String?
    public var namespace: String?
    public var image: String?
    public var serviceMonitor = false
    public var certManager: String?

    public init(file: String) { self.file = file }
}

/// Renders one deployment; notes for the operator go to `note` (stderr: stdout carries the
/// manifests for `kubectl apply -f -`).
public struct DeployRendering {
    public let config: DeployRenderConfig
    let note: (String) -> Void

    public init(config: DeployRenderConfig,
                note: @escaping (String) -> Void = { FileHandle.standardError.write(Data("flwr deploy: \($0)\n".utf8)) }) {
        self.config = config
        self.note = note
    }

    /// Reads the descriptor and writes the manifests (stdout, or one file per object).
    public func run() throws {
        let c = config
        try c.validate()
        let text: String
        do {
            text = c.file == "-"
                ? String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
                : try String(contentsOfFile: c.file, encoding: .utf8)
        } catch {
            throw DeployFileError(message: "cannot read the descriptor \(c.file) (\(error.localizedDescription)); "
                + "pass an existing FLDeployment YAML file with -f")
        }
        let deployment = try FLDeployment.parse(yaml: text)
        if deployment.client.port != nil {
            note("spec.client.port is ignored: flwr clients dial the server (their only listener is the probes and metrics port, 9090)")
        }
        let objects = renderManifests(deployment, options: DeployOptions(namespace: c.namespace, image: c.image,
                                                                         serviceMonitor: c.serviceMonitor,
                                                                         credentials: try credentials(deployment),
                                                                         certManagerIssuer: c.certManager))
        if let outputDir = c.outputDir {
            let written = try writeManifests(objects, to: outputDir)
            note("wrote \(written.count) objects to \(outputDir)")
        } else {
            FileHandle.standardOutput.write(Data(try renderYAMLStream(objects).utf8))
        }
    }

    /// A fresh random token and, with spec.tls and no cert-manager, a CA with the server's and
    /// every client's certificate (FlowerDeploy's `clientIdentities` says which clients get one).
    func credentials(_ d: FLDeployment) throws -> DeployCredentials {
        var c = DeployCredentials(token: randomAuthToken())
        guard d.tls else {
            note("spec.tls is false: clients prove the auth token, but models cross the network unencrypted")
            return c
        }
        let identities = d.clientIdentities
        if identities == nil {
            note("clients on their own data in one Indexed Job have no identity known before they start: server TLS and the auth token only (no client certificates); give each client its own workload for mutual TLS")
        }
        guard config.certManager == nil else { return c }
        let pem = try FederationPEM.make(serverNames: d.serverNames(namespace: config.namespace), clientIdentities: identities ?? [])
        c.caPEM = pem.ca
        c.serverCertificatePEM = pem.serverCertificate
        c.serverKeyPEM = pem.serverKey
        c.clients = pem.clients.map { ClientCredential(identity: $0.identity, certificatePEM: $0.certificate, keyPEM: $0.key) }
        return c
    }
}
