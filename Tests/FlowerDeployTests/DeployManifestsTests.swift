// The rendered objects, read back from the YAML stream (what kubectl would see): the Indexed
// Job, the settings, the labels, and the NetworkPolicy semantics of isolation-by-design.
import XCTest
import Yams
@testable import FlowerDeploy

final class DeployManifestsTests: XCTestCase {
    private typealias Object = [String: Any]

    /// The example rendered to YAML text and parsed back.
    private func render(_ yaml: String = kubeFlowerExample, _ options: DeployOptions = .init()) throws -> [Object] {
        let stream = try renderYAMLStream(renderManifests(try FLDeployment.parse(yaml: yaml), options: options))
        return try Yams.load_all(yaml: stream).map { try XCTUnwrap($0 as? Object) }
    }

    private func one(_ objects: [Object], _ kind: String, _ name: String) throws -> Object {
        try XCTUnwrap(objects.first { $0["kind"] as? String == kind && meta($0)["name"] as? String == name },
                      "no \(kind)/\(name)")
    }

    private func meta(_ o: Object) -> Object { o["metadata"] as? Object ?? [:] }
    private func at(_ o: Any?, _ path: String...) -> Any? {
        path.reduce(o) { ($0 as? Object)?[$1] }
    }

    func testObjectsInApplyOrder() throws {
        let objects = try render()
        XCTAssertEqual(objects.map { "\($0["kind"]!)/\(meta($0)["name"]!)" }, [
            "ConfigMap/fl-deployment-server", "ConfigMap/fl-deployment-client",
            "PersistentVolumeClaim/fl-deployment-checkpoints",
            "NetworkPolicy/fl-deployment-client-isolation", "NetworkPolicy/fl-deployment-server-ingress",
            "Service/fl-deployment-server", "Deployment/fl-deployment-server", "Job/fl-deployment-client",
        ])
    }

    func testEveryObjectCarriesTheScopingLabels() throws {
        for object in try render() {
            let labels = meta(object)["labels"] as? [String: String] ?? [:]
            XCTAssertEqual(labels["app.kubernetes.io/name"], "flwr")
            XCTAssertEqual(labels["app.kubernetes.io/instance"], "fl-deployment")
            XCTAssertTrue(["server", "client"].contains(labels["app.kubernetes.io/component"] ?? ""), "\(labels)")
        }
    }

    func testIndexedJobOnePodPerClient() throws {
        let job = try one(try render(), "Job", "fl-deployment-client")
        XCTAssertEqual(at(job, "spec", "completionMode") as? String, "Indexed")
        XCTAssertEqual(at(job, "spec", "completions") as? Int, 10)
        XCTAssertEqual(at(job, "spec", "parallelism") as? Int, 10)
        XCTAssertNil(at(job, "spec", "selector"), "the Job controller generates the selector")
        let container = try XCTUnwrap((at(job, "spec", "template", "spec", "containers") as? [Object])?.first)
        XCTAssertEqual(container["args"] as? [String], ["client"])
    }

    func testSettingsReachEachRole() throws {
        let objects = try render()
        let server = try XCTUnwrap(at(try one(objects, "ConfigMap", "fl-deployment-server"), "data") as? [String: String])
        XCTAssertEqual(server["FLWR_PORT"], "8080")
        XCTAssertEqual(server["FLWR_ROUNDS"], "10")
        XCTAssertEqual(server["FLWR_MIN_CLIENTS"], "10")
        XCTAssertEqual(server["FLWR_RESUME"], "true")
        XCTAssertEqual(server["FLWR_CHECKPOINT_DIR"], DeployLayout.checkpointDir)
        let client = try XCTUnwrap(at(try one(objects, "ConfigMap", "fl-deployment-client"), "data") as? [String: String])
        XCTAssertEqual(client, ["FLWR_SERVER": "fl-deployment-server:8080", "FLWR_NUM_PARTITIONS": "10",
                                "FLWR_HTTP_PORT": "9090",
                                "FLWR_PRIVACY_BUDGET": "0.7", "FLWR_DP_EPSILON": "0.7",
                                "FLWR_LEDGER_DIR": DeployLayout.stateDir + "/privacy"])
        XCTAssertEqual(server["FLWR_LINGER"], "true", "a Deployment restarts an exiting server: it must linger")
        // Each container loads its own role's ConfigMap.
        let deployment = try one(objects, "Deployment", "fl-deployment-server")
        let container = try XCTUnwrap((at(deployment, "spec", "template", "spec", "containers") as? [Object])?.first)
        XCTAssertEqual(at((container["envFrom"] as? [Any])?.first, "configMapRef", "name") as? String, "fl-deployment-server")
        XCTAssertEqual(container["args"] as? [String], ["server"])
        XCTAssertEqual(server["FLWR_HTTP_PORT"], "9090")
        XCTAssertEqual(at(container, "readinessProbe", "httpGet", "path") as? String, "/readyz")
        XCTAssertEqual(at(container, "readinessProbe", "httpGet", "port") as? String, "http")
        XCTAssertEqual(at(container, "livenessProbe", "httpGet", "path") as? String, "/healthz")
        XCTAssertTrue((container["ports"] as? [Object] ?? []).contains {
            $0["name"] as? String == "http" && $0["containerPort"] as? Int == 9090
        })
        XCTAssertNotNil(at(container, "resources", "limits", "memory"))
        let mounts = container["volumeMounts"] as? [Object] ?? []
        XCTAssertTrue(mounts.contains { $0["mountPath"] as? String == DeployLayout.stateDir && $0["name"] as? String == "state" })
        XCTAssertTrue(DeployLayout.checkpointDir.hasPrefix(DeployLayout.stateDir + "/"), "checkpoints live on the PVC")
    }

    func testServiceSelectsTheServerPods() throws {
        let objects = try render()
        let service = try one(objects, "Service", "fl-deployment-server")
        let pods = at(try one(objects, "Deployment", "fl-deployment-server"), "spec", "template", "metadata", "labels")
        let selector = try XCTUnwrap(at(service, "spec", "selector") as? [String: String])
        let podLabels = try XCTUnwrap(pods as? [String: String])
        XCTAssertTrue(selector.allSatisfy { podLabels[$0.key] == $0.value })
        XCTAssertEqual(at((at(service, "spec", "ports") as? [Any])?.first, "port") as? Int, 8080)
    }

    /// Whether a policy's podSelector selects pods with `labels`.
    private func selects(_ selector: Any?, _ labels: [String: String]) -> Bool {
        let match = at(selector, "matchLabels") as? [String: String] ?? [:]
        return !match.isEmpty && match.allSatisfy { labels[$0.key] == $0.value }
    }

    func testNetworkPolicyIsolatesClients() throws {
        let objects = try render()
        let podLabels = { (kind: String, name: String) throws -> [String: String] in
            try XCTUnwrap(self.at(try self.one(objects, kind, name), "spec", "template", "metadata", "labels") as? [String: String])
        }
        let clientPods = try podLabels("Job", "fl-deployment-client")
        let serverPods = try podLabels("Deployment", "fl-deployment-server")
        let policies = objects.filter { $0["kind"] as? String == "NetworkPolicy" }

        // Every policy that selects the clients: ingress denied, egress only server:8080 and DNS.
        let clientPolicies = policies.filter { selects(at($0, "spec", "podSelector"), clientPods) }
        XCTAssertEqual(clientPolicies.count, 1)
        for policy in clientPolicies {
            XCTAssertEqual(Set(at(policy, "spec", "policyTypes") as? [String] ?? []), ["Ingress", "Egress"])
            XCTAssertEqual((at(policy, "spec", "ingress") as? [Any])?.count ?? 0, 0, "nothing may reach a client")
            let egress = try XCTUnwrap(at(policy, "spec", "egress") as? [Object])
            var reachesServer = false
            for rule in egress {
                let ports = try XCTUnwrap(rule["ports"] as? [Object], "an egress rule without ports opens every port")
                if let peers = rule["to"] as? [Object] {
                    XCTAssertEqual(peers.count, 1)
                    XCTAssertNil(peers[0]["namespaceSelector"])
                    XCTAssertNil(peers[0]["ipBlock"])
                    XCTAssertTrue(selects(peers[0]["podSelector"], serverPods), "peer must be the server")
                    XCTAssertFalse(selects(peers[0]["podSelector"], clientPods), "peer must not be a client")
                    XCTAssertEqual(ports.map { "\($0["protocol"]!)/\($0["port"]!)" }, ["TCP/8080"])
                    reachesServer = true
                } else {
                    XCTAssertEqual(Set(ports.map { "\($0["protocol"]!)/\($0["port"]!)" }), ["UDP/53", "TCP/53"],
                                   "a rule open to any peer is DNS only")
                }
            }
            XCTAssertTrue(reachesServer)
        }

        // The server admits only this deployment's clients, on its port.
        let serverPolicies = policies.filter { selects(at($0, "spec", "podSelector"), serverPods) }
        XCTAssertEqual(serverPolicies.count, 1)
        let ingress = try XCTUnwrap(at(serverPolicies.first, "spec", "ingress") as? [Object])
        XCTAssertEqual(ingress.count, 1)
        let from = try XCTUnwrap(ingress[0]["from"] as? [Object])
        XCTAssertEqual(from.count, 1)
        XCTAssertTrue(selects(from[0]["podSelector"], clientPods))
        XCTAssertEqual((ingress[0]["ports"] as? [Object])?.map { "\($0["protocol"]!)/\($0["port"]!)" }, ["TCP/8080"])
    }

    func testNoPoliciesWithoutIsolationAndOverrides() throws {
        let yaml = kubeFlowerExample.replacingOccurrences(of: "isolation: True", with: "isolation: false")
            .replacingOccurrences(of: "port: 8080", with: "port: 9090")
        let objects = try render(yaml, DeployOptions(namespace: "fl-test", image: "reg.example/flwr:1"))
        XCTAssertFalse(objects.contains { $0["kind"] as? String == "NetworkPolicy" })
        for object in objects { XCTAssertEqual(meta(object)["namespace"] as? String, "fl-test") }
        for name in ["fl-deployment-server", "fl-deployment-client"] {
            let kind = name.hasSuffix("server") ? "Deployment" : "Job"
            let container = (at(try one(objects, kind, name), "spec", "template", "spec", "containers") as? [Object])?.first
            XCTAssertEqual(container?["image"] as? String, "reg.example/flwr:1")
        }
        let client = at(try one(objects, "ConfigMap", "fl-deployment-client"), "data") as? [String: String]
        XCTAssertEqual(client?["FLWR_SERVER"], "fl-deployment-server:9090")
    }

    func testDefaultImageAndNoNamespace() throws {
        let objects = try render("apiVersion: flwr.dev/v1\nkind: FLDeployment\nmetadata: {name: fl}\nspec: {}\n")
        XCTAssertTrue(objects.allSatisfy { meta($0)["namespace"] == nil }, "kubectl's namespace applies")
        let container = (at(try one(objects, "Job", "fl-client"), "spec", "template", "spec", "containers") as? [Object])?.first
        XCTAssertEqual(container?["image"] as? String, DeployLayout.defaultImage)
        let client = at(try one(objects, "ConfigMap", "fl-client"), "data") as? [String: String]
        XCTAssertNil(client?["FLWR_DP_EPSILON"], "no privacy block, no DP")
    }

    func testOutputDirWritesOneFilePerObject() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("flwr-deploy-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let objects = renderManifests(try FLDeployment.parse(yaml: kubeFlowerExample))
        let paths = try writeManifests(objects, to: dir)
        XCTAssertEqual(paths.map { ($0 as NSString).lastPathComponent }, [
            "01-configmap-fl-deployment-server.yaml", "02-configmap-fl-deployment-client.yaml",
            "03-persistentvolumeclaim-fl-deployment-checkpoints.yaml",
            "04-networkpolicy-fl-deployment-client-isolation.yaml", "05-networkpolicy-fl-deployment-server-ingress.yaml",
            "06-service-fl-deployment-server.yaml", "07-deployment-fl-deployment-server.yaml", "08-job-fl-deployment-client.yaml",
        ])
        for (path, object) in zip(paths, objects) {
            XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), try object.body.rendered())
        }
    }

    /// Both pod templates carry the usual prometheus.io annotations and HTTP probes; the Service
    /// exposes the operations port; --service-monitor adds a ServiceMonitor on it.
    func testScrapeAnnotationsProbesAndServiceMonitor() throws {
        let plain = try render()
        XCTAssertFalse(plain.contains { $0["kind"] as? String == "ServiceMonitor" }, "only with --service-monitor")
        for (kind, name) in [("Deployment", "fl-deployment-server"), ("Job", "fl-deployment-client")] {
            let object = try one(plain, kind, name)
            let annotations = at(object, "spec", "template", "metadata", "annotations") as? [String: String]
            XCTAssertEqual(annotations, ["prometheus.io/scrape": "true", "prometheus.io/port": "9090",
                                         "prometheus.io/path": "/metrics"], name)
            let container = try XCTUnwrap((at(object, "spec", "template", "spec", "containers") as? [Object])?.first)
            XCTAssertEqual(at(container, "livenessProbe", "httpGet", "path") as? String, "/healthz", name)
            XCTAssertEqual(at(container, "readinessProbe", "httpGet", "path") as? String, "/readyz", name)
        }
        let ports = at(try one(plain, "Service", "fl-deployment-server"), "spec", "ports") as? [Object] ?? []
        XCTAssertTrue(ports.contains { $0["name"] as? String == "http" && $0["port"] as? Int == 9090 })

        let objects = try render(kubeFlowerExample, DeployOptions(serviceMonitor: true))
        let monitor = try one(objects, "ServiceMonitor", "fl-deployment-server")
        XCTAssertEqual(monitor["apiVersion"] as? String, "monitoring.coreos.com/v1")
        XCTAssertEqual(at(monitor, "spec", "selector", "matchLabels") as? [String: String],
                       at(try one(objects, "Service", "fl-deployment-server"), "spec", "selector") as? [String: String])
        let endpoint = (at(monitor, "spec", "endpoints") as? [Object])?.first
        XCTAssertEqual(endpoint?["port"] as? String, "http")
        XCTAssertEqual(endpoint?["path"] as? String, "/metrics")
    }
}
