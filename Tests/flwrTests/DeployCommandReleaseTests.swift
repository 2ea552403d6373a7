// `flwr deploy` as a process: the example rendered by the release binary validates against the
// Kubernetes schemas offline (PyPI's kubernetes-validate, strict mode, Kubernetes 1.30 and 1.37),
// bad descriptors fail with their message on stderr and nothing on stdout, and FLWR_* variables
// reach the command through main.
import Foundation
import TestSupport
import XCTest

final class DeployCommandReleaseTests: XCTestCase {
    /// The pinned validator; its wheel carries the schemas, so validation needs no network.
    static let validator = "kubernetes-validate==1.37.0"
    static let kubernetesVersions = ["1.30.0", "1.37.0"]

    override func setUpWithError() throws {
        try requireReleaseBuild()
    }

    private var example: String { packageRoot.appendingPathComponent("deploy/examples/flwr-deploy.yaml").path }

    private func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) throws -> ProgramOutput {
        try runProgram(executable, arguments, environment: environment)
    }

    /// python3 with kubernetes-validate importable (scripts/test-peers installs it); skips otherwise.
    private func ensureValidator() throws {
        if try run("/usr/bin/env", ["python3", "-c", "import kubernetes_validate"]).status == 0 { return }
        throw XCTSkip("\(Self.validator) is not importable: run scripts/test-peers")
    }

    /// Validates the files strictly against each Kubernetes version; returns the validator's output.
    @discardableResult
    private func validate(_ files: [String], expectValid: Bool = true) throws -> String {
        try ensureValidator()
        var output = ""
        for version in Self.kubernetesVersions {
            let result = try run("/usr/bin/env", ["python3", "-m", "kubernetes_validate", "--strict", "--no-warn",
                                                  "-k", version] + files)
            output += result.stdout + result.stderr
            XCTAssertEqual(result.status == 0, expectValid, "kubernetes \(version):\n\(result.stdout)\(result.stderr)")
        }
        return output
    }

    private func temporaryDirectory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("flwr-deploy-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        return dir
    }

    func testExampleValidatesAgainstKubernetesSchemas() throws {
        let rendered = try run(try flwrBinaryPath(), ["deploy", "-f", example])
        XCTAssertEqual(rendered.status, 0, rendered.stderr)
        let file = try temporaryDirectory().appendingPathComponent("all.yaml")
        try rendered.stdout.write(to: file, atomically: true, encoding: .utf8)
        let output = try validate([file.path])
        for object in ["secret/fl-deployment-auth", "secret/fl-deployment-server-tls", "secret/fl-deployment-client-tls",
                       "configmap/fl-deployment-server", "configmap/fl-deployment-client",
                       "persistentvolumeclaim/fl-deployment-checkpoints", "networkpolicy/fl-deployment-client-isolation",
                       "networkpolicy/fl-deployment-server-ingress", "service/fl-deployment-server",
                       "deployment/fl-deployment-server", "job/fl-deployment-client"] {
            XCTAssertEqual(output.components(separatedBy: "passed for resource \(object) ").count - 1,
                           Self.kubernetesVersions.count, "\(object) not validated:\n\(output)")
        }
        // The committed rendering is what the binary prints today.
        let committed = try String(contentsOfFile: packageRoot.appendingPathComponent("deploy/examples/rendered.yaml").path,
                                   encoding: .utf8)
        XCTAssertEqual(committed, withoutSecrets(rendered.stdout), "regenerate deploy/examples/rendered.yaml (deploy/README.md)")
    }

    /// The cloud–edge forms, each rendered by the binary and validated strictly against
    /// both Kubernetes versions: every object named must pass in each.
    func testEdgeFormsValidateAgainstKubernetesSchemas() throws {
        func descriptor(_ name: String, client: String, server: String = "rounds: 3") -> String {
            """
            apiVersion: flwr.dev/v1
            kind: FLDeployment
            metadata: {name: \(name)}
            spec:
              server: {\(server)}
              client: {\(client)}

            """
        }
        let scheduling = """
            tolerations: [{key: flwr.dev/edge, operator: Exists, effect: NoSchedule}, \
            {key: dedicated, value: fl, effect: NoExecute, tolerationSeconds: 300}], \
            resources: {requests: {cpu: 250m, memory: 300Mi}, limits: {cpu: 1, memory: 1Gi, nvidia.com/gpu: 1}}, \
            priorityClassName: fl-edge
            """
        let cases: [(descriptor: String, objects: [String])] = [
            (descriptor("hostpath", client: "num_clients: 3, data: {hostPath: /srv/flwr/site-data}"),
             ["job/hostpath-client", "configmap/hostpath-client"]),
            (descriptor("claims", client: "num_clients: 2, data: {persistentVolumeClaim: site-data, format: cifar10}, "
                        + "privacy: {budget: 2}"),
             ["job/claims-client-0", "job/claims-client-1"]),
            (descriptor("placed", client: "num_clients: 3, data: {hostPath: /data}, placement: ["
                        + "{index: 0, nodeSelector: {flwr.dev/site: bristol}}, "
                        + "{index: 2, affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: "
                        + "{nodeSelectorTerms: [{matchExpressions: [{key: topology.kubernetes.io/zone, operator: In, "
                        + "values: [uk-north]}]}]}}}}]"),
             ["job/placed-client-0", "job/placed-client-1", "job/placed-client-2"]),
            (descriptor("sched", client: "num_clients: 2, allowSharedNodes: true, " + scheduling,
                        server: "rounds: 3, placement: {nodeSelector: {flwr.dev/tier: cloud}}, " + scheduling),
             ["deployment/sched-server", "job/sched-client"]),
            (descriptor("sts", client: "num_clients: 3, restartPolicy: Always, data: {hostPath: /data}, privacy: {budget: 1}"),
             ["service/sts-client", "statefulset/sts-client"]),
            (descriptor("stsclaims", client: "num_clients: 2, restartPolicy: Always, data: {persistentVolumeClaim: d}, "
                        + "placement: {nodeSelector: {flwr.dev/role: edge}}"),
             ["service/stsclaims-client", "statefulset/stsclaims-client-0", "statefulset/stsclaims-client-1"]),
        ]
        let dir = try temporaryDirectory()
        var files: [String] = []
        var expected: [String] = []
        for (index, item) in cases.enumerated() {
            let descriptorFile = dir.appendingPathComponent("edge\(index).yaml")
            try item.descriptor.write(to: descriptorFile, atomically: true, encoding: .utf8)
            let rendered = try run(try flwrBinaryPath(), ["deploy", "-f", descriptorFile.path])
            XCTAssertEqual(rendered.status, 0, "\(item.descriptor)\n\(rendered.stderr)")
            let out = dir.appendingPathComponent("rendered\(index).yaml")
            try rendered.stdout.write(to: out, atomically: true, encoding: .utf8)
            files.append(out.path)
            expected += item.objects
        }
        // The committed edge example too, and its committed rendering is today's.
        let edge = try run(try flwrBinaryPath(), ["deploy", "-f", packageRoot.appendingPathComponent("deploy/examples/edge-three-sites.yaml").path])
        XCTAssertEqual(edge.status, 0, edge.stderr)
        let edgeFile = dir.appendingPathComponent("edge-example.yaml")
        try edge.stdout.write(to: edgeFile, atomically: true, encoding: .utf8)
        files.append(edgeFile.path)
        expected += ["deployment/fl-edge-server", "job/fl-edge-client-0", "job/fl-edge-client-1", "job/fl-edge-client-2"]
        let committed = try String(contentsOfFile: packageRoot.appendingPathComponent("deploy/examples/rendered-edge.yaml").path,
                                   encoding: .utf8)
        XCTAssertEqual(committed, withoutSecrets(edge.stdout), "regenerate deploy/examples/rendered-edge.yaml (deploy/README.md)")

        let output = try validate(files)
        for object in expected {
            XCTAssertEqual(output.components(separatedBy: "passed for resource \(object) ").count - 1,
                           Self.kubernetesVersions.count, "\(object) not validated:\n\(output)")
        }
    }

    func testValidatorRejectsABrokenObject() throws {
        let rendered = try run(try flwrBinaryPath(), ["deploy", "-f", example])
        let file = try temporaryDirectory().appendingPathComponent("broken.yaml")
        try rendered.stdout.replacingOccurrences(of: "completions: 10", with: "completions: ten")
            .write(to: file, atomically: true, encoding: .utf8)
        XCTAssertTrue(try validate([file.path], expectValid: false).contains("spec.completions"))
    }

    func testOutputDirVariantWithEnvironmentValidates() throws {
        let dir = try temporaryDirectory()
        let descriptor = dir.appendingPathComponent("d.yaml")
        try String(contentsOfFile: example, encoding: .utf8).replacingOccurrences(of: "isolation: True", with: "isolation: false")
            .write(to: descriptor, atomically: true, encoding: .utf8)
        let out = dir.appendingPathComponent("out").path
        // --namespace from FLWR_NAMESPACE, through Flwr.main and Environment.swift.
        let result = try run(try flwrBinaryPath(), ["deploy", "-f", descriptor.path, "--output-dir", out],
                             environment: ["FLWR_NAMESPACE": "fl-test"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.stdout, "")
        let files = try FileManager.default.contentsOfDirectory(atPath: out).sorted()
        XCTAssertEqual(files.count, 9, "\(files)")  // 3 Secrets (token, server TLS, client TLS) + 6
        XCTAssertFalse(files.contains { $0.contains("networkpolicy") })
        for file in files where file.contains("-secret-") {
            let mode = try FileManager.default.attributesOfItem(atPath: out + "/" + file)[.posixPermissions] as? Int
            XCTAssertEqual(mode, 0o600, "\(file) holds keys: owner only")
        }
        for file in files {
            let text = try String(contentsOfFile: out + "/" + file, encoding: .utf8)
            XCTAssertTrue(text.contains("\n  namespace: fl-test\n"), "\(file) lacks the namespace")
        }
        try validate(files.map { out + "/" + $0 })
    }

    func testBadDescriptorsFailWithTheirMessage() throws {
        let dir = try temporaryDirectory()
        let cases: [(String, String)] = [
            ("apiVersion: flwr.dev/v1\nkind: FLDeployment\nmetadata: {}\nspec: {}\n",
             "missing required field metadata.name"),
            ("apiVersion: flwr.dev/v1\nkind: FLDeployment\nmetadata: {name: fl}\nspec: {client: {nmu_clients: 3}}\n",
             "unknown field spec.client.nmu_clients"),
            ("apiVersion: flwr.dev/v1\nkind: FLDeployment\nmetadata: {name: fl}\nspec: {client: {num_clients: 0}}\n",
             "spec.client.num_clients is 0"),
            ("apiVersion: flwr.dev/v1\nkind: FLDeployment\nmetadata: {name: fl}\nspec: {server: {port: 65536}}\n",
             "spec.server.port is 65536, outside 1...65535"),
            ("apiVersion: flwr.dev/v1\nkind: FLDeployment\nmetadata: {name: fl}\nspec: {client: {data: {hostpath: /srv}}}\n",
             "unknown field spec.client.data.hostpath"),
            ("apiVersion: flwr.dev/v1\nkind: FLDeployment\nmetadata: {name: fl}\n"
                + "spec: {client: {placement: [{index: 5, nodeSelector: {site: a}}]}}\n",
             "spec.client.placement[0].index is 5, outside 0...1"),
        ]
        for (index, (yaml, message)) in cases.enumerated() {
            let file = dir.appendingPathComponent("bad\(index).yaml")
            try yaml.write(to: file, atomically: true, encoding: .utf8)
            let result = try run(try flwrBinaryPath(), ["deploy", "-f", file.path])
            XCTAssertNotEqual(result.status, 0)
            XCTAssertEqual(result.stdout, "", "nothing for kubectl on failure")
            XCTAssertTrue(result.stderr.contains(message), "expected \(message) in:\n\(result.stderr)")
        }
    }
}

/// A rendering without its Secret documents (fresh random keys and token on every run; the
/// committed example renderings leave them out, and hold no key material).
func withoutSecrets(_ stream: String) -> String {
    stream.components(separatedBy: "---\n").filter { !$0.isEmpty && !$0.contains("\nkind: Secret\n") }
        .map { "---\n" + $0 }.joined()
}
