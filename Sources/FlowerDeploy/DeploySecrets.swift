// Credentials for a deployment ("secure by default"): a Secret with a random auth token
// for every pod, and with `spec.tls: true` (the default) TLS 1.3 material: either the CA, server
// and per-client certificates made by `flwr deploy` itself (Secrets NAME-server-tls and
// NAME-client-tls), or with --cert-manager ISSUER cert-manager `Certificate` objects whose Secrets
// cert-manager fills. Everything is mounted read-only and reaches flwr as FLWR_*_FILE / FLWR_TLS_*
// paths, never as a value in a ConfigMap or on a command line.
//
// Mutual TLS needs each client's identity at render time: partition-i (a shared dataset), or the
// pod/workload name NAME-client-i (per-index workloads, StatefulSets). Clients of one Indexed Job
// on their own data are named by a random pod hostname, so they get server TLS + the token only.
// Every client pod of one workload mounts every client's key (a pod template cannot pick one
// Secret per index): a compromised client pod can claim another client's identity; one workload
// per client (spec.client.placement by index, or per-client data claims) narrows it to its own.

import FlowerIdentity

/// The secrets `flwr deploy` generated (nil fields: not generated).
public struct DeployCredentials: Equatable, Sendable {
    /// The shared auth token (random, generated per render).
    public var token: String
    /// PEM of the CA, the server's certificate and key; nil with cert-manager or `tls: false`.
    public var caPEM: String?
    public var serverCertificatePEM: String?
    public var serverKeyPEM: String?
    /// Per-client certificates, by identity (empty without mutual TLS).
    public var clients: [ClientCredential]

    public init(token: String, caPEM: String? = nil, serverCertificatePEM: String? = nil, serverKeyPEM: String? = nil,
                clients: [ClientCredential] = []) {
        self.token = token; self.caPEM = caPEM; self.serverCertificatePEM = serverCertificatePEM
        self.serverKeyPEM = serverKeyPEM; self.clients = clients
    }
}

/// One client's certificate and key.
public struct ClientCredential: Equatable, Sendable {
    public var identity: String
    public var certificatePEM: String
    public var keyPEM: String

    public init(identity: String, certificatePEM: String, keyPEM: String) {
        self.identity = identity; self.certificatePEM = certificatePEM; self.keyPEM = keyPEM
    }
}

extension FLDeployment {
    /// The DNS names clients may dial the server by (its Service), for the server certificate.
    public func serverNames(namespace: String?) -> [String] {
        let service = name + "-server"
        guard let ns = namespace ?? self.namespace else { return [service] }
        return [service, "\(service).\(ns)", "\(service).\(ns).svc", "\(service).\(ns).svc.cluster.local"]
    }

    /// Each client's identity as it will announce it, or nil when that is not known at render time.
    public var clientIdentities: [String]? {
        let all = (0 ..< client.numClients).map { i -> String? in
            if clientsArePerIndex { return "\(name)-client-\(i)" }
            if client.data == nil { return IdentityContract.clientID(partition: i) }
            if client.restartPolicy == "Always" { return "\(name)-client-\(i)" }  // StatefulSet pod name
            return nil
        }
        let known = all.compactMap { $0 }
        return known.count == all.count ? known : nil
    }
}

/// Where the secrets are mounted inside the containers.
enum SecretLayout {
    static let authDir = "/etc/flwr/auth"
    static let tlsDir = "/etc/flwr/tls"
}

extension ManifestRenderer {
    var authSecretName: String { d.name + "-auth" }
    var serverTLSSecretName: String { d.name + "-server-tls" }
    var clientTLSSecretName: String { d.name + "-client-tls" }
    var tlsOn: Bool { d.tls && (options.credentials != nil) }
    var mutualTLS: Bool { tlsOn && d.clientIdentities != nil }

    /// Secrets (or cert-manager Certificates) to create before the pods.
    func secretObjects() -> [KubeObject] {
        guard let c = options.credentials else { return [] }
        var result = [object("Secret", authSecretName, component: "server", extraLabels: [], [
            ("type", .string("Opaque")), ("stringData", .map([("token", .string(c.token))])),
        ])]
        guard d.tls else { return result }
        if let issuer = options.certManagerIssuer {
            result.append(certificate(serverName, secret: serverTLSSecretName, component: "server", issuer: issuer,
                                      commonName: serverName, dnsNames: d.serverNames(namespace: namespace), usage: "server auth"))
            if let ids = d.clientIdentities {
                for (i, id) in ids.enumerated() {
                    result.append(certificate("\(clientName)-\(i)", secret: "\(clientTLSSecretName)-\(i)", component: "client",
                                              issuer: issuer, commonName: id, dnsNames: [id], usage: "client auth"))
                }
            }
            return result
        }
        if let ca = c.caPEM, let cert = c.serverCertificatePEM, let key = c.serverKeyPEM {
            result.append(object("Secret", serverTLSSecretName, component: "server", extraLabels: [], [
                ("type", .string("kubernetes.io/tls")),
                ("stringData", .map([("tls.crt", .string(cert)), ("tls.key", .string(key)), ("ca.crt", .string(ca))])),
            ]))
            var data: [(String, YAMLValue)] = [("ca.crt", .string(ca))]
            if mutualTLS {
                for client in c.clients {
                    data.append(("\(client.identity).crt", .string(client.certificatePEM)))
                    data.append(("\(client.identity).key", .string(client.keyPEM)))
                }
            }
            result.append(object("Secret", clientTLSSecretName, component: "client", extraLabels: [], [
                ("type", .string("Opaque")), ("stringData", .map(data)),
            ]))
        }
        return result
    }

    /// A cert-manager Certificate (ECDSA P-256) stored in `secret`.
    func certificate(_ name: String, secret: String, component: String, issuer: String, commonName: String,
                     dnsNames: [String], usage: String) -> KubeObject {
        object("Certificate", name, component: component, extraLabels: [], [
            ("spec", .map([
                ("secretName", .string(secret)),
                ("commonName", .string(commonName)),
                ("dnsNames", .list(dnsNames.map(YAMLValue.string))),
                ("usages", .list([.string("digital signature"), .string(usage)])),
                ("duration", .string("8760h")),
                ("privateKey", .map([("algorithm", .string("ECDSA")), ("size", .int(256)), ("rotationPolicy", .string("Always"))])),
                ("issuerRef", .map([("name", .string(issuer)), ("kind", .string("Issuer")), ("group", .string("cert-manager.io"))])),
            ])),
        ])
    }

    /// The server's FLWR_* settings for the secrets (paths only).
    var serverSecretSettings: [(String, YAMLValue)] {
        guard options.credentials != nil else { return [] }
        var s: [(String, YAMLValue)] = [("FLWR_AUTH_TOKEN_FILE", .string(SecretLayout.authDir + "/token"))]
        if tlsOn {
            s.append(("FLWR_TLS_CERT", .string(SecretLayout.tlsDir + "/tls.crt")))
            s.append(("FLWR_TLS_KEY", .string(SecretLayout.tlsDir + "/tls.key")))
            if mutualTLS { s.append(("FLWR_TLS_CLIENT_CA", .string(SecretLayout.tlsDir + "/ca.crt"))) }
        }
        return s
    }

    /// The clients' FLWR_* settings for the secrets; `{client-id}` is replaced by each client.
    var clientSecretSettings: [(String, YAMLValue)] {
        guard options.credentials != nil else { return [] }
        var s: [(String, YAMLValue)] = [("FLWR_AUTH_TOKEN_FILE", .string(SecretLayout.authDir + "/token"))]
        if tlsOn {
            s.append(("FLWR_TLS_CA", .string(SecretLayout.tlsDir + "/ca.crt")))
            if mutualTLS {
                s.append(("FLWR_TLS_CERT", .string(SecretLayout.tlsDir + "/{client-id}.crt")))
                s.append(("FLWR_TLS_KEY", .string(SecretLayout.tlsDir + "/{client-id}.key")))
            }
        }
        return s
    }

    /// Read-only mounts and volumes of the secrets for `role`.
    func secretMounts(role: String) -> (mounts: [YAMLValue], volumes: [YAMLValue]) {
        guard options.credentials != nil else { return ([], []) }
        var mounts: [YAMLValue] = [.map([("name", .string("auth")), ("mountPath", .string(SecretLayout.authDir)),
                                         ("readOnly", .bool(true))])]
        var volumes: [YAMLValue] = [.map([("name", .string("auth")),
                                          ("secret", .map([("secretName", .string(authSecretName)), ("defaultMode", .int(0o440))]))])]
        guard tlsOn else { return (mounts, volumes) }
        mounts.append(.map([("name", .string("tls")), ("mountPath", .string(SecretLayout.tlsDir)), ("readOnly", .bool(true))]))
        if role == "server" {
            volumes.append(.map([("name", .string("tls")),
                                 ("secret", .map([("secretName", .string(serverTLSSecretName)), ("defaultMode", .int(0o440))]))]))
        } else if options.certManagerIssuer != nil {
            // cert-manager writes one Secret per client: project them into one folder by identity.
            var sources: [YAMLValue] = []
            for (i, id) in (d.clientIdentities ?? []).enumerated() {
                var items: [YAMLValue] = [.map([("key", .string("tls.crt")), ("path", .string("\(id).crt"))]),
                                          .map([("key", .string("tls.key")), ("path", .string("\(id).key"))])]
                if i == 0 { items.append(.map([("key", .string("ca.crt")), ("path", .string("ca.crt"))])) }
                sources.append(.map([("secret", .map([("name", .string("\(clientTLSSecretName)-\(i)")), ("items", .list(items))]))]))
            }
            if sources.isEmpty {
                // No client certificates (identities unknown): the CA from the server's Secret only.
                sources.append(.map([("secret", .map([("name", .string(serverTLSSecretName)),
                                                      ("items", .list([.map([("key", .string("ca.crt")), ("path", .string("ca.crt"))])]))]))]))
            }
            volumes.append(.map([("name", .string("tls")),
                                 ("projected", .map([("sources", .list(sources)), ("defaultMode", .int(0o440))]))]))
        } else {
            volumes.append(.map([("name", .string("tls")),
                                 ("secret", .map([("secretName", .string(clientTLSSecretName)), ("defaultMode", .int(0o440))]))]))
        }
        return (mounts, volumes)
    }
}
