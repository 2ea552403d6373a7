// Clients where their data lives: spec.client.data, placement, tolerations, resources,
// priorityClassName, restartPolicy and allowSharedNodes, read back from the rendered YAML stream
// (what kubectl sees), and one bad descriptor per field whose error must name the field's path.
import Testing
import Yams
@testable import FlowerDeploy

private typealias Object = [String: Any]

/// A descriptor with `client` (YAML lines indented under `client:`) and optional `server` lines.
func edgeDescriptor(client: String, server: String = "rounds: 3") -> String {
    func indent(_ s: String) -> String { s.split(separator: "\n").map { "    " + $0 }.joined(separator: "\n") }
    return """
        apiVersion: flwr.dev/v1
        kind: FLDeployment
        metadata:
          name: fl-edge
        spec:
          server:
        \(indent(server))
          client:
        \(indent(client))

        """
}

private func render(_ yaml: String) throws -> [Object] {
    let stream = try renderYAMLStream(renderManifests(try FLDeployment.parse(yaml: yaml)))
    return try Yams.load_all(yaml: stream).map { try #require($0 as? Object) }
}

private func at(_ o: Any?, _ path: String...) -> Any? { path.reduce(o) { ($0 as? Object)?[$1] } }
private func names(_ objects: [Object]) -> [String] {
    objects.map { "\($0["kind"]!)/\(at($0, "metadata", "name")!)" }
}
private func one(_ objects: [Object], _ kind: String, _ name: String) throws -> Object {
    try #require(objects.first { $0["kind"] as? String == kind && at($0, "metadata", "name") as? String == name })
}
private func podSpec(_ workload: Object) -> Object { at(workload, "spec", "template", "spec") as? Object ?? [:] }
private func mainContainer(_ workload: Object) throws -> Object {
    try #require((podSpec(workload)["containers"] as? [Object])?.first)
}
private func settings(_ objects: [Object], _ name: String) throws -> [String: String] {
    try #require(at(try one(objects, "ConfigMap", name), "data") as? [String: String])
}
private let clientLabels: [String: String] = ["app.kubernetes.io/name": "flwr", "app.kubernetes.io/instance": "fl-edge",
                                              "app.kubernetes.io/component": "client"]

struct DeployEdgeTests {
    @Test func hostPathDataMountsTheNodesFolderReadOnlyAndDropsThePartitionFlags() throws {
        let objects = try render(edgeDescriptor(client: "num_clients: 3\ndata: {hostPath: /srv/flwr/site-data}"))
        #expect(names(objects).suffix(2) == ["Deployment/fl-edge-server", "Job/fl-edge-client"])
        let job = try one(objects, "Job", "fl-edge-client")
        #expect(at(job, "spec", "completionMode") as? String == "Indexed")
        let volumes = podSpec(job)["volumes"] as? [Object] ?? []
        let data = try #require(volumes.first { $0["name"] as? String == "data" })
        #expect(at(data, "hostPath", "path") as? String == "/srv/flwr/site-data")
        #expect(at(data, "hostPath", "type") as? String == "Directory", "a node without the folder fails, never an empty folder")
        let mounts = try mainContainer(job)["volumeMounts"] as? [Object] ?? []
        let mount = try #require(mounts.first { $0["name"] as? String == "data" })
        #expect(mount["mountPath"] as? String == "/srv/flwr/site-data")
        #expect(mount["readOnly"] as? Bool == true)
        #expect(try settings(objects, "fl-edge-client") == ["FLWR_SERVER": "fl-edge-server:8080", "FLWR_DATASET": "npz",
                                                            "FLWR_DATA_DIR": "/srv/flwr/site-data", "FLWR_HTTP_PORT": "9090"])
        // The server is given no dataset: evaluation happens on the clients.
        let server = try settings(objects, "fl-edge-server")
        #expect(server["FLWR_DATASET"] == "none")
        #expect(server["FLWR_DATA_DIR"] == nil)
        // Two clients never share a node.
        let term = try #require((at(podSpec(job)["affinity"], "podAntiAffinity",
                                    "requiredDuringSchedulingIgnoredDuringExecution") as? [Object])?.first)
        #expect(term["topologyKey"] as? String == "kubernetes.io/hostname")
        #expect(at(term, "labelSelector", "matchLabels") as? [String: String] == clientLabels)
        #expect(podSpec(job)["topologySpreadConstraints"] == nil)
    }

    @Test func perClientClaimsMakeOneJobPerClient() throws {
        let objects = try render(edgeDescriptor(client: "num_clients: 3\ndata: {persistentVolumeClaim: site-data, format: cifar10}"))
        #expect(names(objects).suffix(3) == ["Job/fl-edge-client-0", "Job/fl-edge-client-1", "Job/fl-edge-client-2"])
        for index in 0 ..< 3 {
            let job = try one(objects, "Job", "fl-edge-client-\(index)")
            #expect(at(job, "spec", "completions") as? Int == 1)
            #expect(at(job, "metadata", "labels", DeployLayout.indexLabel) as? String == String(index))
            #expect(at(job, "spec", "template", "metadata", "labels", DeployLayout.indexLabel) as? String == String(index))
            let volumes = podSpec(job)["volumes"] as? [Object] ?? []
            #expect(volumes.contains { at($0, "persistentVolumeClaim", "claimName") as? String == "site-data-\(index)" })
            let container = try mainContainer(job)
            let env = container["env"] as? [Object] ?? []
            #expect(env.map { "\($0["name"]!)=\($0["value"]!)" } == ["FLWR_CLIENT_ID=fl-edge-client-\(index)"],
                    "no FLWR_PARTITION: the client trains on all of its claim")
            let mounts = container["volumeMounts"] as? [Object] ?? []
            #expect(mounts.contains { $0["mountPath"] as? String == DeployLayout.dataDir && $0["readOnly"] as? Bool == true })
        }
        #expect(try settings(objects, "fl-edge-client")["FLWR_DATASET"] == "cifar10")
        #expect(try settings(objects, "fl-edge-client")["FLWR_DATA_DIR"] == DeployLayout.dataDir)
    }

    @Test func perIndexPlacementPinsEachClientAndMergesTheAntiAffinity() throws {
        let client = """
            num_clients: 3
            data: {hostPath: /srv/flwr/site-data}
            placement:
              - {index: 0, nodeSelector: {flwr.dev/site: bristol-edge-0}}
              - index: 2
                nodeSelector: {flwr.dev/site: leeds-edge-2}
                affinity:
                  nodeAffinity:
                    requiredDuringSchedulingIgnoredDuringExecution:
                      nodeSelectorTerms:
                        - matchExpressions: [{key: topology.kubernetes.io/zone, operator: In, values: [uk-north]}]
            """
        let objects = try render(edgeDescriptor(client: client))
        let zero = podSpec(try one(objects, "Job", "fl-edge-client-0"))
        #expect(zero["nodeSelector"] as? [String: String] == ["flwr.dev/site": "bristol-edge-0"])
        let one_ = podSpec(try one(objects, "Job", "fl-edge-client-1"))
        #expect(one_["nodeSelector"] == nil, "index 1 has no entry: it may run anywhere")
        let two = podSpec(try one(objects, "Job", "fl-edge-client-2"))
        #expect(two["nodeSelector"] as? [String: String] == ["flwr.dev/site": "leeds-edge-2"])
        let zones = (at(two["affinity"], "nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution",
                        "nodeSelectorTerms") as? [Object])?.first?["matchExpressions"] as? [Object]
        #expect(zones?.first?["values"] as? [String] == ["uk-north"])
        #expect((at(two["affinity"], "podAntiAffinity", "requiredDuringSchedulingIgnoredDuringExecution") as? [Object])?.count == 1)
    }

    @Test func oneplacementForAllWithSharedNodesAllowedSpreadsInstead() throws {
        let client = "num_clients: 4\nallowSharedNodes: true\nplacement: {nodeSelector: {node-role.example/edge: \"true\"}}"
        let objects = try render(edgeDescriptor(client: client))
        let job = try one(objects, "Job", "fl-edge-client")
        #expect(podSpec(job)["nodeSelector"] as? [String: String] == ["node-role.example/edge": "true"])
        #expect(podSpec(job)["affinity"] == nil)
        let spread = try #require((podSpec(job)["topologySpreadConstraints"] as? [Object])?.first)
        #expect(spread["whenUnsatisfiable"] as? String == "ScheduleAnyway")
        #expect(spread["maxSkew"] as? Int == 1)
    }

    @Test func tolerationsResourcesAndPriorityReachServerAndClients() throws {
        let scheduling = """
            tolerations:
              - {key: edge.example/site, operator: Exists, effect: NoSchedule}
              - {key: dedicated, value: fl, effect: NoExecute, tolerationSeconds: 300}
            resources:
              requests: {cpu: 250m, memory: 300Mi}
              limits: {cpu: 1, memory: 1Gi, nvidia.com/gpu: 1}
            priorityClassName: fl-edge
            """
        let objects = try render(edgeDescriptor(client: "num_clients: 2\n" + scheduling,
                                                server: "rounds: 3\nplacement: {nodeSelector: {tier: cloud}}\n" + scheduling))
        for workload in [try one(objects, "Deployment", "fl-edge-server"), try one(objects, "Job", "fl-edge-client")] {
            let spec = podSpec(workload)
            #expect(spec["priorityClassName"] as? String == "fl-edge")
            let tolerations = spec["tolerations"] as? [Object] ?? []
            #expect(tolerations.count == 2)
            #expect(tolerations.first?["operator"] as? String == "Exists")
            #expect(tolerations.last?["tolerationSeconds"] as? Int == 300)
            #expect(tolerations.last?["operator"] == nil, "Equal is Kubernetes' default: left as written")
            let resources = try mainContainer(workload)["resources"] as? Object
            #expect(at(resources, "requests") as? [String: String] == ["cpu": "250m", "memory": "300Mi"])
            #expect(at(resources, "limits") as? [String: String] == ["cpu": "1", "memory": "1Gi", "nvidia.com/gpu": "1"])
        }
        #expect(podSpec(try one(objects, "Deployment", "fl-edge-server"))["nodeSelector"] as? [String: String] == ["tier": "cloud"])
    }

    @Test func restartPolicyAlwaysMakesAStatefulSetWithStableNames() throws {
        let objects = try render(edgeDescriptor(client: "num_clients: 3\nrestartPolicy: Always\ndata: {hostPath: /data}"))
        #expect(names(objects).suffix(2) == ["Service/fl-edge-client", "StatefulSet/fl-edge-client"])
        let service = try one(objects, "Service", "fl-edge-client")
        #expect(at(service, "spec", "clusterIP") as? String == "None")
        let set = try one(objects, "StatefulSet", "fl-edge-client")
        #expect(at(set, "spec", "serviceName") as? String == "fl-edge-client")
        #expect(at(set, "spec", "replicas") as? Int == 3)
        #expect(at(set, "spec", "podManagementPolicy") as? String == "Parallel")
        #expect(at(set, "spec", "selector", "matchLabels") as? [String: String] == clientLabels)
        #expect(podSpec(set)["restartPolicy"] as? String == "Always")

        // Per-client claims: one StatefulSet per client, selecting only its own pod.
        let perClient = try render(edgeDescriptor(client: "num_clients: 2\nrestartPolicy: Always\ndata: {persistentVolumeClaim: d}"))
        #expect(names(perClient).suffix(3) == ["Service/fl-edge-client", "StatefulSet/fl-edge-client-0", "StatefulSet/fl-edge-client-1"])
        let second = try one(perClient, "StatefulSet", "fl-edge-client-1")
        #expect(at(second, "spec", "selector", "matchLabels", DeployLayout.indexLabel) as? String == "1")
        #expect(at(second, "spec", "replicas") as? Int == 1)
        #expect(((try mainContainer(second))["env"] as? [Object])?.first?["value"] as? String == "fl-edge-client-1")
    }

    @Test func privacyRunsAsAnInitContainerOnTheClientsOwnVolume() throws {
        let objects = try render(edgeDescriptor(client: "num_clients: 2\ndata: {hostPath: /srv/site}\nprivacy: {budget: 0.5}"))
        let job = try one(objects, "Job", "fl-edge-client")
        let initContainer = try #require((podSpec(job)["initContainers"] as? [Object])?.first)
        #expect(initContainer["name"] as? String == "privatize")
        #expect(initContainer["args"] as? [String] == [
            "privatize", "--dataset", "npz", "--data-dir", "/srv/site", "--out", "/srv/site/flwr-private/release",
            "--ledger-dir", "/srv/site/flwr-private/ledger", "--dp-epsilon", "0.5", "--privacy-budget", "0.5", "--resume",
            "--include-test",
        ])
        #expect(initContainer["envFrom"] == nil, "the client's settings are not the release's")
        let initMounts = initContainer["volumeMounts"] as? [Object] ?? []
        #expect(initMounts.contains { $0["name"] as? String == "data" && $0["mountPath"] as? String == "/srv/site" && $0["readOnly"] == nil })
        // The client sees the release only (not the raw data, not the ledger and its seeds), read-only.
        let mounts = try mainContainer(job)["volumeMounts"] as? [Object] ?? []
        let data = try #require(mounts.first { $0["name"] as? String == "data" })
        #expect(data["subPath"] as? String == DeployLayout.releaseSubPath)
        #expect(data["mountPath"] as? String == DeployLayout.releaseMount)
        #expect(data["readOnly"] as? Bool == true)
        #expect(try settings(objects, "fl-edge-client") == ["FLWR_SERVER": "fl-edge-server:8080", "FLWR_DATASET": "npz",
                                                            "FLWR_DATA_DIR": DeployLayout.releaseMount, "FLWR_HTTP_PORT": "9090"])
    }

    /// One bad descriptor per new field: the message names the path and says what to do.
    @Test(arguments: [
        ("data: {hostpath: /srv}", "unknown field spec.client.data.hostpath"),
        ("data: {hostPath: /a, persistentVolumeClaim: b}", "spec.client.data has both hostPath and persistentVolumeClaim"),
        ("data: {format: npz}", "spec.client.data needs hostPath"),
        ("data: {hostPath: srv/data}", "spec.client.data.hostPath \"srv/data\" must be an absolute folder"),
        ("data: {hostPath: /srv/../etc}", "spec.client.data.hostPath \"/srv/../etc\" must be an absolute folder"),
        ("data: {persistentVolumeClaim: Site_Data}", "spec.client.data.persistentVolumeClaim \"Site_Data\" must be a claim-name prefix"),
        ("data: {hostPath: /srv, format: parquet}", "spec.client.data.format \"parquet\" must be one of npz"),
        ("data: {hostPath: /srv}\ndataset: {path: /usr/share/datasets/fashion-mnist}", "spec.client.data and spec.client.dataset.path both"),
        ("placement: {nodeselector: {a: b}}", "unknown field spec.client.placement.nodeselector"),
        ("placement: {}", "spec.client.placement says nothing"),
        ("placement: [{index: 3, nodeSelector: {a: b}}]", "spec.client.placement[0].index is 3, outside 0...1"),
        ("placement: [{index: 0, nodeSelector: {a: b}}, {index: 0, nodeSelector: {a: c}}]", "spec.client.placement[1].index 0 is listed twice"),
        ("placement: [{nodeSelector: {a: b}}]", "missing required field spec.client.placement[0].index"),
        ("placement: [{index: 0, zone: a}]", "unknown field spec.client.placement[0].zone"),
        ("placement: {nodeSelector: {site: bristol edge}}", "spec.client.placement.nodeSelector.site \"bristol edge\" is not a label value"),
        ("placement: {nodeSelector: {site: true}}", "spec.client.placement.nodeSelector.site must be a string; quote it"),
        ("placement: {affinity: {nodeAfinity: {}}}", "unknown field spec.client.placement.affinity.nodeAfinity"),
        ("tolerations: {key: a}", "spec.client.tolerations must be a list of tolerations"),
        ("tolerations: [{key: a, operator: Contains}]", "spec.client.tolerations[0].operator \"Contains\" must be Exists or Equal"),
        ("tolerations: [{key: a, operator: Exists, value: b}]", "spec.client.tolerations[0] has operator Exists and value \"b\""),
        ("tolerations: [{value: b}]", "spec.client.tolerations[0] has operator Equal without a key"),
        ("tolerations: [{key: a, effect: NoRun}]", "spec.client.tolerations[0].effect \"NoRun\" must be one of NoSchedule"),
        ("tolerations: [{key: a, effect: NoSchedule, tolerationSeconds: 5}]", "spec.client.tolerations[0].tolerationSeconds applies to effect NoExecute only"),
        ("tolerations: [{key: a, effects: NoSchedule}]", "unknown field spec.client.tolerations[0].effects"),
        ("resources: {request: {cpu: 1}}", "unknown field spec.client.resources.request"),
        ("resources: {limits: {memory: 2 GB}}", "spec.client.resources.limits.memory must be a Kubernetes quantity"),
        ("resources: {limits: {gpu: 1}}", "spec.client.resources.limits.gpu is not a resource name"),
        ("resources: {requests: {}}", "spec.client.resources.requests is empty"),
        ("priorityClassName: High_Priority", "spec.client.priorityClassName \"High_Priority\" is not a PriorityClass name"),
        ("restartPolicy: Sometimes", "spec.client.restartPolicy \"Sometimes\" must be OnFailure or Never"),
        ("allowSharedNodes: maybe", "spec.client.allowSharedNodes must be true or false"),
        ("nodeName: edge-1", "spec.client.nodeName \"edge-1\" puts all 2 clients on one node"),
        ("restartPolicy: Always\nprivacy: {budget: 1}", "spec.client.privacy with restartPolicy: Always needs spec.client.data"),
    ])
    func badClientField(_ field: String, _ message: String) throws {
        let yaml = edgeDescriptor(client: "num_clients: 2\n" + field)
        let error = try #require(throws: DeployError.self) { try FLDeployment.parse(yaml: yaml) }
        #expect(error.problems.contains { $0.contains(message) }, "expected \"\(message)\" in \(error.problems)")
    }

    @Test(arguments: [
        ("placement: [{index: 0, nodeSelector: {a: b}}]", "spec.server.placement must be a mapping"),
        ("resources: {requests: {cpu: lots}}", "spec.server.resources.requests.cpu must be a Kubernetes quantity"),
        ("tolerations: [{key: a, operator: Exists, value: b}]", "spec.server.tolerations[0] has operator Exists"),
        ("priorityClassName: -x", "spec.server.priorityClassName \"-x\" is not a PriorityClass name"),
    ])
    func badServerField(_ field: String, _ message: String) throws {
        let yaml = edgeDescriptor(client: "num_clients: 2", server: "rounds: 3\n" + field)
        let error = try #require(throws: DeployError.self) { try FLDeployment.parse(yaml: yaml) }
        #expect(error.problems.contains { $0.contains(message) }, "expected \"\(message)\" in \(error.problems)")
    }

    @Test(arguments: [("500m", true), ("2", true), ("1.5", true), ("512Mi", true), ("1e3", true), ("1Gi", true),
                      ("2 GB", false), ("-1", false), ("", false), ("Mi", false), ("1.2.3", false), ("1e", false)])
    func quantities(_ text: String, _ valid: Bool) {
        #expect(isQuantity(text) == valid)
    }
}
