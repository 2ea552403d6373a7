// Credentials in the rendered objects: a token Secret for everyone, TLS Secrets or
// cert-manager Certificates, mounted read-only, and only paths in the ConfigMaps.
import XCTest
import Yams
@testable import FlowerDeploy

final class DeploySecretsTests: XCTestCase {
    private typealias Object = [String: Any]

    private func render(_ options: DeployOptions, yaml: String = kubeFlowerExample) throws -> [Object] {
        let stream = try renderYAMLStream(renderManifests(try FLDeployment.parse(yaml: yaml), options: options))
        return try Yams.load_all(yaml: stream).map { try XCTUnwrap($0 as? Object) }
    }

    private func find(_ objects: [Object], _ kind: String, _ name: String) throws -> Object {
        try XCTUnwrap(objects.first { $0["kind"] as? String == kind && (($0["metadata"] as? Object)?["name"] as? String) == name },
                      "no \(kind)/\(name) in \(objects.map { "\($0["kind"]!)" })")
    }

    private func at(_ o: Any?, _ path: String...) -> Any? { path.reduce(o) { ($0 as? Object)?[$1] } }

    private func credentials(clients: [String]) -> DeployCredentials {
        DeployCredentials(token: "t0ken", caPEM: "CA-PEM", serverCertificatePEM: "SERVER-PEM", serverKeyPEM: "SERVER-KEY",
                          clients: clients.map { ClientCredential(identity: $0, certificatePEM: "C-\($0)", keyPEM: "K-\($0)") })
    }

    func testEmbeddedMutualTLSSecretsMountsAndSettings() throws {
        let d = try FLDeployment.parse(yaml: kubeFlowerExample)
        XCTAssertTrue(d.tls, "tls defaults to true")
        let ids = try XCTUnwrap(d.clientIdentities)
        XCTAssertEqual(ids, (0 ..< d.client.numClients).map { "partition-\($0)" })
        let objects = try render(DeployOptions(credentials: credentials(clients: ids)))
        XCTAssertEqual(objects.prefix(3).map { $0["kind"] as? String }, ["Secret", "Secret", "Secret"], "secrets before the pods")
        let auth = try find(objects, "Secret", "fl-deployment-auth")
        XCTAssertEqual(at(auth, "stringData", "token") as? String, "t0ken")
        let server = try find(objects, "Secret", "fl-deployment-server-tls")
        XCTAssertEqual(server["type"] as? String, "kubernetes.io/tls")
        XCTAssertEqual(at(server, "stringData", "tls.key") as? String, "SERVER-KEY")
        let clients = try find(objects, "Secret", "fl-deployment-client-tls")
        XCTAssertEqual(at(clients, "stringData", "partition-1.key") as? String, "K-partition-1")
        XCTAssertNil(at(clients, "stringData", "tls.key"), "clients never receive the server's key")

        let serverCM = try find(objects, "ConfigMap", "fl-deployment-server")
        XCTAssertEqual(at(serverCM, "data", "FLWR_TLS_CERT") as? String, "/etc/flwr/tls/tls.crt")
        XCTAssertEqual(at(serverCM, "data", "FLWR_TLS_CLIENT_CA") as? String, "/etc/flwr/tls/ca.crt")
        XCTAssertEqual(at(serverCM, "data", "FLWR_AUTH_TOKEN_FILE") as? String, "/etc/flwr/auth/token")
        let clientCM = try find(objects, "ConfigMap", "fl-deployment-client")
        XCTAssertEqual(at(clientCM, "data", "FLWR_TLS_CERT") as? String, "/etc/flwr/tls/{client-id}.crt")
        for cm in [serverCM, clientCM] {
            XCTAssertFalse("\(cm)".contains("t0ken") || "\(cm)".contains("PEM"), "no secret in a ConfigMap: \(cm)")
        }
        let deployment = try find(objects, "Deployment", "fl-deployment-server")
        let podSpec = try XCTUnwrap(at(deployment, "spec", "template", "spec") as? Object)
        let mounts = try XCTUnwrap(((podSpec["containers"] as? [Object])?.first?["volumeMounts"]) as? [Object])
        let tlsMount = try XCTUnwrap(mounts.first { $0["name"] as? String == "tls" })
        XCTAssertEqual(tlsMount["readOnly"] as? Bool, true)
        let volumes = try XCTUnwrap(podSpec["volumes"] as? [Object])
        XCTAssertEqual(at(volumes.first { $0["name"] as? String == "tls" }, "secret", "secretName") as? String, "fl-deployment-server-tls")
    }

    func testCertManagerRendersCertificatesAndNoKeys() throws {
        let objects = try render(DeployOptions(namespace: "fl", credentials: DeployCredentials(token: "t0ken"), certManagerIssuer: "fl-ca"))
        let server = try find(objects, "Certificate", "fl-deployment-server")
        XCTAssertEqual(server["apiVersion"] as? String, "cert-manager.io/v1")
        XCTAssertEqual(at(server, "spec", "secretName") as? String, "fl-deployment-server-tls")
        XCTAssertEqual(at(server, "spec", "issuerRef", "name") as? String, "fl-ca")
        XCTAssertEqual(at(server, "spec", "dnsNames") as? [String],
                       ["fl-deployment-server", "fl-deployment-server.fl", "fl-deployment-server.fl.svc", "fl-deployment-server.fl.svc.cluster.local"])
        let client1 = try find(objects, "Certificate", "fl-deployment-client-1")
        XCTAssertEqual(at(client1, "spec", "commonName") as? String, "partition-1")
        XCTAssertEqual(at(client1, "spec", "usages") as? [String], ["digital signature", "client auth"])
        XCTAssertFalse(objects.contains { $0["kind"] as? String == "Secret" && "\($0)".contains("tls") }, "no key material rendered")
    }

    func testTLSFalseRendersTheTokenOnly() throws {
        let yaml = kubeFlowerExample.replacingOccurrences(of: "spec:\n", with: "spec:\n  tls: false\n")
        let objects = try render(DeployOptions(credentials: DeployCredentials(token: "t0ken")), yaml: yaml)
        XCTAssertEqual(objects.filter { $0["kind"] as? String == "Secret" }.count, 1)
        let serverCM = try find(objects, "ConfigMap", "fl-deployment-server")
        XCTAssertNil(at(serverCM, "data", "FLWR_TLS_CERT"))
        XCTAssertEqual(at(serverCM, "data", "FLWR_AUTH_TOKEN_FILE") as? String, "/etc/flwr/auth/token")
    }
}
