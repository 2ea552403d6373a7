// The image, built and run: scripts/image builds the Fashion-MNIST image with podman, and a server
// container and three client containers run a federation on a podman network, each started from
// `flwr deploy`'s rendered manifests (RenderedPod.swift): the same args, FLWR_* variables, user,
// security context, volumes and mutual-TLS Secrets a kubelet would give them. Checks: 2 rounds
// complete and the model and history land on the server's state volume; /healthz, /readyz and
// /metrics answer from outside on the ops port; `podman stop` (SIGTERM) ends the lingering server
// within the pod's grace period with exit 0; a new server container on the same volume resumes
// after round 2 and runs round 3 with fresh clients; a client holding another CA is refused and
// exits non-zero. Skips where podman is not installed. Prints the server's start-to-ready time and
// the federation's wall time (BENCHMARKS.md, "The container").
import Foundation
import XCTest

final class ContainerFederationReleaseTests: XCTestCase {
    /// The test's whole budget: every wait below is bounded by what is left of it.
    private let budget: TimeInterval = 1500
    private var started = Date()
    private var left: Int { max(10, Int(budget - Date().timeIntervalSince(started))) }

    func testFederationOfContainersStartedAsDeployRendersThem() throws {
        #if DEBUG
        throw XCTSkip("release-only: run swift test -c release --filter ReleaseTests")
        #endif
        guard Podman.installed else {
            throw XCTSkip("podman is not installed: apt-get install podman runc debootstrap (scripts/image does it), then run this test again")
        }
        started = Date()
        let flwr = try flwrBinary()
        let tag = String(UUID().uuidString.lowercased().prefix(6))
        let name = "flc-\(tag)", network = "flc-net-\(tag)"
        let root = "/tmp/flwr-container-\(tag)"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        XCTAssertEqual(chmod(root, 0o755), 0)
        var containers: [String] = []
        defer {
            for c in containers { _ = try? Podman.call(["rm", "-f", "-t", "0", c], check: false) }
            _ = try? Podman.call(["network", "rm", "-f", network], check: false)
            try? FileManager.default.removeItem(atPath: root)
        }

        // The image (scripts/image prints its name last) and the rendering.
        let built = try execute([packageRoot + "/scripts/image", "--fashion-mnist"], timeout: left,
                            environment: ["FLWR_SCRATCH_PATH": packageRoot + "/.build-static"])
        XCTAssertEqual(built.status, 0, built.output)
        let image = try XCTUnwrap(built.output.split(separator: "\n").last.map(String.init))
        let descriptor = root + "/deploy.yaml"
        try """
            apiVersion: flwr.dev/v1
            kind: FLDeployment
            metadata: {name: \(name)}
            spec:
              server: {port: 8080, rounds: 2, args: [--max-test-examples, "500"]}
              client:
                num_clients: 3
                allowSharedNodes: true
                dataset: {path: /usr/share/datasets/fashion-mnist}
                args: [--max-train-examples, "300", --threads, "1"]
            """.write(toFile: descriptor, atomically: true, encoding: .utf8)
        let rendered = try execute([flwr, "deploy", "-f", descriptor, "--image", image, "--output-dir", root + "/manifests"])
        XCTAssertEqual(rendered.status, 0, rendered.output)
        let manifests = try RenderedManifests(directory: root + "/manifests")
        let server = try manifests.podTemplate("Deployment", name + "-server")
        let client = try manifests.podTemplate("Job", name + "-client")
        // What the pods run with, as the manifests render it (and so as this test runs them).
        for pod in [server, client] {
            XCTAssertEqual(pod.podSecurity["runAsNonRoot"] as? Bool, true)
            XCTAssertEqual(pod.podSecurity["runAsUser"] as? Int, 10001)
            XCTAssertEqual((pod.containerSecurity["seccompProfile"] as? [String: Any])?["type"] as? String, "RuntimeDefault")
            XCTAssertEqual(pod.containerSecurity["readOnlyRootFilesystem"] as? Bool, true)
            XCTAssertEqual(pod.containerSecurity["allowPrivilegeEscalation"] as? Bool, false)
            XCTAssertEqual((pod.containerSecurity["capabilities"] as? [String: Any])?["drop"] as? [String], ["ALL"])
        }
        let serverEnv = try server.environment(), clientEnv = try client.environment()
        XCTAssertNotNil(serverEnv["FLWR_TLS_CLIENT_CA"], "the rendering has no mutual TLS: \(serverEnv)")
        XCTAssertNotNil(clientEnv["FLWR_TLS_CERT"], "the rendering has no client certificates: \(clientEnv)")

        try Podman.call(["network", "create", network])
        let state = root + "/checkpoints-volume"
        let claims = [name + "-checkpoints": state]
        let opsPort = try server.probe("readinessProbe").port

        /// Starts the server pod (the Service's name is the container's name on the network) and
        /// waits for its readiness probe from outside; returns the published ops port and the
        /// seconds from `podman run` to ready.
        func startServer(_ container: String, extraEnv: [String: String] = [:]) throws -> (port: Int, ready: Double) {
            let t0 = Date()
            var args = ["run", "-d", "--name", container, "--network", network, "--network-alias", name + "-server",
                        "--stop-timeout", String(server.gracePeriod), "-p", "127.0.0.1::\(opsPort)"] + Podman.limits
            args += try server.securityArguments()
            args += try server.volumeArguments(in: root + "/" + container, claims: claims)
            args += serverEnv.merging(extraEnv) { _, new in new }.sorted { $0.key < $1.key }.flatMap { ["-e", "\($0.key)=\($0.value)"] }
            try Podman.call(args + [image] + server.args)
            containers.append(container)
            let published = try Podman.call(["port", container, "\(opsPort)/tcp"])
            let port = try XCTUnwrap(published.split(separator: ":").last.flatMap { Int($0) }, "podman port said \(published)")
            let probe = try server.probe("readinessProbe")
            while httpGet(port: port, path: probe.path)?.status != 200 {
                guard Date().timeIntervalSince(t0) < 120 else {
                    throw PodmanError(message: "\(container) not ready after 120 s: \(Podman.logs(container))")
                }
                usleep(50_000)   // the kubelet's readiness probe loop, at a shorter period: what the test reproduces
            }
            return (port, Date().timeIntervalSince(t0))
        }

        /// Starts client pod `index` of the Indexed Job (Kubernetes sets JOB_COMPLETION_INDEX).
        func startClient(_ container: String, index: Int, secretOverrides: [String: String] = [:],
                         extraEnv: [String: String] = [:]) throws {
            var args = ["run", "-d", "--name", container, "--network", network, "--hostname", container,
                        "--stop-timeout", String(client.gracePeriod)] + Podman.limits
            args += try client.securityArguments()
            args += try client.volumeArguments(in: root + "/" + container, claims: claims, secretOverrides: secretOverrides)
            var env = clientEnv.merging(extraEnv) { _, new in new }
            env["JOB_COMPLETION_INDEX"] = String(index)
            args += env.sorted { $0.key < $1.key }.flatMap { ["-e", "\($0.key)=\($0.value)"] }
            try Podman.call(args + [image] + client.args)
            containers.append(container)
        }

        func runClients(_ prefix: String) throws {
            for i in 0 ..< 3 { try startClient("\(prefix)-\(i)", index: i) }
            for i in 0 ..< 3 {
                let status = try Podman.wait("\(prefix)-\(i)", timeout: left)
                XCTAssertEqual(status, 0, "client \(i): \(Podman.logs("\(prefix)-\(i)"))")
            }
        }

        // 1. Two rounds, three clients, mutual TLS.
        let t0 = Date()
        let first = try startServer(name + "-server")
        try runClients(name + "-client-a")
        let federation = Date().timeIntervalSince(t0)
        print("container: server start-to-ready \(String(format: "%.2f", first.ready)) s; federation (2 rounds, 3 clients) \(String(format: "%.1f", federation)) s")
        var log = Podman.logs(name + "-server")
        XCTAssertTrue(log.contains("mutual TLS"), log)
        for i in 0 ..< 3 { XCTAssertTrue(log.contains("client partition-\(i) joined"), "partition-\(i) did not join: \(log)") }

        // 2. The ops port, from outside, while the server lingers.
        for path in ["/healthz", "/readyz"] {
            XCTAssertEqual(httpGet(port: first.port, path: path)?.status, 200, path)
        }
        let metrics = try XCTUnwrap(httpGet(port: first.port, path: "/metrics"))
        XCTAssertEqual(metrics.status, 200)
        XCTAssertTrue(metrics.body.contains("flwr_clients_connected"), metrics.body)
        XCTAssertTrue(metrics.body.contains("flwr_rounds_completed"), metrics.body)

        // 3. A client that trusts another CA (its own `flwr certs`) is refused and fails.
        let otherCA = root + "/other-ca"
        let certs = try execute([flwr, "certs", "--out", otherCA, "--server-name", name + "-server", "--clients", "3"])
        XCTAssertEqual(certs.status, 0, certs.output)
        let wrongTLS = root + "/wrong-tls"
        try FileManager.default.createDirectory(atPath: wrongTLS, withIntermediateDirectories: true)
        for (from, to) in [("ca.pem", "ca.crt"), ("client-0.pem", "partition-0.crt"), ("client-0.key", "partition-0.key")] {
            try FileManager.default.copyItem(atPath: otherCA + "/" + from, toPath: wrongTLS + "/" + to)
            XCTAssertEqual(chown(wrongTLS + "/" + to, 0, 10001), 0)
            XCTAssertEqual(chmod(wrongTLS + "/" + to, 0o440), 0)
        }
        try startClient(name + "-client-wrong-ca", index: 0, secretOverrides: [name + "-client-tls": wrongTLS],
                        extraEnv: ["FLWR_CONNECT_DEADLINE": "20"])
        let refused = try Podman.wait(name + "-client-wrong-ca", timeout: left)
        let refusal = Podman.logs(name + "-client-wrong-ca")
        XCTAssertNotEqual(refused, 0, "a client trusting another CA was not refused: \(refusal)")
        XCTAssertTrue(refusal.contains("the server's certificate"), "refused for another reason than the CA: \(refusal)")

        // 4. SIGTERM: the lingering server stops within the grace period with exit 0 (had podman
        //    needed SIGKILL after the grace period, the exit code would be 137).
        try Podman.call(["stop", name + "-server"], timeout: server.gracePeriod + 30)
        XCTAssertEqual(try Podman.call(["inspect", "--format", "{{.State.ExitCode}}", name + "-server"]), "0", Podman.logs(name + "-server"))
        log = Podman.logs(name + "-server")
        XCTAssertTrue(log.contains("stopping on"), log)
        let history = try String(contentsOfFile: state + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(history.count, 2, "history: \(history)")
        let model = try Data(contentsOf: URL(fileURLWithPath: state + "/model.npz"))
        XCTAssertEqual(Array(model.prefix(2)), Array("PK".utf8), "model.npz is not a zip")
        XCTAssertTrue(FileManager.default.fileExists(atPath: state + "/checkpoints/checkpoint.flwr"))

        // 5. A new server container on the same volume resumes (an operator raised rounds to 3 in
        //    the ConfigMap) and runs round 3 with fresh clients.
        _ = try startServer(name + "-server-2", extraEnv: ["FLWR_ROUNDS": "3"])
        try runClients(name + "-client-b")
        try Podman.call(["stop", name + "-server-2"], timeout: server.gracePeriod + 30)
        XCTAssertEqual(try Podman.call(["inspect", "--format", "{{.State.ExitCode}}", name + "-server-2"]), "0")
        log = Podman.logs(name + "-server-2")
        XCTAssertTrue(log.contains("round 2 completed"), "the restarted server did not resume: \(log)")
        let resumed = try String(contentsOfFile: state + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(resumed.count, 3, "history after the resumed run: \(resumed)")
        XCTAssertTrue(resumed.last?.contains("\"round\":3") ?? false, "last history line: \(resumed.last ?? "")")
    }

    /// The flwr binary built beside this test bundle, or the package's release build.
    private func flwrBinary() throws -> String {
        let dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for candidate in [dir.path, dir.deletingLastPathComponent().path, packageRoot + "/.build/release"] {
            if FileManager.default.isExecutableFile(atPath: candidate + "/flwr") { return candidate + "/flwr" }
        }
        throw XCTSkip("no flwr binary beside \(dir.path); run swift build -c release --product flwr first")
    }
}

/// The package's root folder (scripts/image), through symlinks.
let packageRoot = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath().deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent().path
