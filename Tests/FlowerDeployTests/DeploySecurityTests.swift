// The hardening a good chart ships (Flower's Helm chart: non-root, read-only root filesystem, all
// capabilities dropped, seccomp RuntimeDefault, NetworkPolicy on, TLS on, probes), checked on
// every pod template and container of every workload shape `flwr deploy` renders: the Indexed
// Job, one Job per client, StatefulSets, and the privatize init container.
import Testing
import Yams
@testable import FlowerDeploy

private typealias Object = [String: Any]

private func at(_ o: Any?, _ path: String...) -> Any? { path.reduce(o) { ($0 as? Object)?[$1] } }

/// Each workload shape: a descriptor's client lines and the workloads it must render.
private let shapes: [(client: String, workloads: [String])] = [
    ("num_clients: 3", ["Deployment/fl-edge-server", "Job/fl-edge-client"]),
    ("num_clients: 2\ndata: {hostPath: /srv/site}\nprivacy: {budget: 2}\nplacement:\n  - {index: 0, nodeSelector: {site: a}}\n  - {index: 1, nodeSelector: {site: b}}",
     ["Deployment/fl-edge-server", "Job/fl-edge-client-0", "Job/fl-edge-client-1"]),
    ("num_clients: 2\nrestartPolicy: Always\ndata: {hostPath: /srv/site}", ["Deployment/fl-edge-server", "StatefulSet/fl-edge-client"]),
    ("num_clients: 2\nrestartPolicy: Always\ndata: {persistentVolumeClaim: site}",
     ["Deployment/fl-edge-server", "StatefulSet/fl-edge-client-0", "StatefulSet/fl-edge-client-1"]),
]

private func render(_ client: String, credentials: DeployCredentials? = DeployCredentials(token: "t0ken", caPEM: "CA", serverCertificatePEM: "SERVER", serverKeyPEM: "KEY")) throws -> [Object] {
    let d = try FLDeployment.parse(yaml: edgeDescriptor(client: client))
    let stream = try renderYAMLStream(renderManifests(d, options: DeployOptions(credentials: credentials)))
    return try Yams.load_all(yaml: stream).map { try #require($0 as? Object) }
}

private func workloads(_ objects: [Object]) -> [String: Object] {
    var byName: [String: Object] = [:]
    for o in objects where ["Deployment", "Job", "StatefulSet"].contains(o["kind"] as? String ?? "") {
        byName["\(o["kind"]!)/\(at(o, "metadata", "name")!)"] = o
    }
    return byName
}

struct DeploySecurityTests {
    @Test(arguments: shapes.indices)
    func everyPodRunsRestricted(shape: Int) throws {
        let objects = try render(shapes[shape].client)
        let found = workloads(objects)
        #expect(found.keys.sorted() == shapes[shape].workloads.sorted())
        for (name, workload) in found {
            let pod = try #require(at(workload, "spec", "template", "spec") as? Object, "\(name) has no pod template")
            #expect(at(pod, "securityContext", "runAsNonRoot") as? Bool == true, "\(name)")
            #expect(at(pod, "securityContext", "runAsUser") as? Int == 10001, "\(name)")
            #expect(at(pod, "securityContext", "fsGroup") as? Int == 10001, "\(name)")
            #expect(at(pod, "securityContext", "seccompProfile", "type") as? String == "RuntimeDefault", "\(name)")
            #expect(pod["automountServiceAccountToken"] as? Bool == false, "\(name)")
            #expect(pod["terminationGracePeriodSeconds"] as? Int == 30, "\(name)")
            let containers = (pod["containers"] as? [Object] ?? []) + (pod["initContainers"] as? [Object] ?? [])
            #expect(!containers.isEmpty)
            for container in containers {
                let label = "\(name) container \(container["name"] ?? "?")"
                let security = try #require(container["securityContext"] as? Object, "\(label) has no securityContext")
                #expect(security["allowPrivilegeEscalation"] as? Bool == false, "\(label)")
                #expect(security["readOnlyRootFilesystem"] as? Bool == true, "\(label)")
                #expect(security["runAsNonRoot"] as? Bool == true, "\(label)")
                #expect(security["privileged"] == nil, "\(label)")
                #expect(at(security, "capabilities", "drop") as? [String] == ["ALL"], "\(label)")
                #expect(at(security, "capabilities", "add") == nil, "\(label)")
                #expect(at(security, "seccompProfile", "type") as? String == "RuntimeDefault", "\(label)")
            }
            // The long-running container is probed over HTTP on the named ops port.
            let main = try #require((pod["containers"] as? [Object])?.first)
            for probe in ["readinessProbe", "livenessProbe"] {
                #expect(at(main, probe, "httpGet", "port") as? String == "http", "\(name) \(probe)")
            }
            #expect(at(main, "readinessProbe", "httpGet", "path") as? String == "/readyz", "\(name)")
            #expect(at(main, "livenessProbe", "httpGet", "path") as? String == "/healthz", "\(name)")
        }
    }

    /// Isolation and TLS are on unless a descriptor turns them off.
    @Test func networkPoliciesAndTLSAreOnByDefault() throws {
        let objects = try render("num_clients: 3")
        let kinds = objects.map { "\($0["kind"]!)/\(at($0, "metadata", "name")!)" }
        #expect(kinds.contains("NetworkPolicy/fl-edge-client-isolation"))
        #expect(kinds.contains("NetworkPolicy/fl-edge-server-ingress"))
        #expect(kinds.contains("Secret/fl-edge-server-tls"))
        let d = try FLDeployment.parse(yaml: edgeDescriptor(client: "num_clients: 3"))
        #expect(d.tls)
        #expect(d.client.isolation)
    }
}
