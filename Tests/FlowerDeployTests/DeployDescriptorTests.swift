// FLDeployment parsing: kubeFlower's own example, the operator's defaults, and bad descriptors
// whose errors must name the field and say what to change.
import XCTest
@testable import FlowerDeploy

/// kubeFlower's example descriptor, verbatim (from its README's FLDeployment example).
let kubeFlowerExample = """
    apiVersion: flwr.dev/v1
    kind: FLDeployment
    metadata:
      name: fl-deployment
    spec:
      server:
        imagePullPolicy: IfNotPresent
        port: 8080
        rounds: 10
      client:
        num_clients: 10
        imagePullPolicy: IfNotPresent
        isolation: True
        port: 30051
        dataset:
          download: False
        privacy:
          budget: 0.7
    """

final class DeployDescriptorTests: XCTestCase {
    private func problems(_ yaml: String) -> [String] {
        do {
            _ = try FLDeployment.parse(yaml: yaml)
            XCTFail("expected an error for:\n\(yaml)")
            return []
        } catch {
            return error.problems
        }
    }

    private func minimal(_ spec: String = "") -> String {
        "apiVersion: flwr.dev/v1\nkind: FLDeployment\nmetadata:\n  name: fl\nspec:\n" + spec
    }

    func testKubeFlowerExample() throws {
        let d = try FLDeployment.parse(yaml: kubeFlowerExample)
        XCTAssertEqual(d.name, "fl-deployment")
        XCTAssertEqual(d.server.port, 8080)
        XCTAssertEqual(d.server.rounds, 10)
        XCTAssertEqual(d.client.numClients, 10)
        XCTAssertEqual(d.minClients, 10, "minClients defaults to num_clients, not kubeFlower's 2")
        XCTAssertTrue(d.client.isolation)
        XCTAssertEqual(d.client.port, 30051)
        XCTAssertFalse(d.client.datasetDownload)
        XCTAssertEqual(d.client.privacy, FLDeployment.Privacy(budget: 0.7, rate: 1.0))
    }

    func testDefaults() throws {
        let d = try FLDeployment.parse(yaml: minimal("  server: {}\n"))
        XCTAssertEqual(d.server.port, 8080)
        XCTAssertEqual(d.server.rounds, 5)
        XCTAssertEqual(d.server.imagePullPolicy, "IfNotPresent")
        XCTAssertEqual(d.client.numClients, 2)
        XCTAssertEqual(d.minClients, 2)
        XCTAssertTrue(d.client.isolation)
        XCTAssertNil(d.client.privacy, "no privacy block: no differential privacy")
        let withPrivacy = try FLDeployment.parse(yaml: minimal("  client:\n    privacy: {}\n"))
        XCTAssertEqual(withPrivacy.client.privacy?.budget, 1.0, "the operator's default budget")
    }

    func testAllFields() throws {
        let d = try FLDeployment.parse(yaml: """
            apiVersion: flwr.dev/v1
            kind: FLDeployment
            metadata: {name: fl, namespace: research, labels: {team: vision}, annotations: {note: "x: y"}}
            spec:
              server: {image: "reg/flwr:1", imagePullPolicy: Always, nodeName: n1, port: 9000, replicas: 1,
                       minClients: 3, rounds: 2, args: ["--seed", 42]}
              client: {image: "reg/flwr:2", nodeName: n2, num_clients: 4, isolation: false, allowSharedNodes: true,
                       dataset: {download: false, path: /data}, privacy: {budget: 2, rate: 1.0}, args: [--alpha, 0.5],
                       restartPolicy: Never, priorityClassName: fl}
            """)
        XCTAssertEqual(d.namespace, "research")
        XCTAssertEqual(d.labels, ["team": "vision"])
        XCTAssertEqual(d.annotations, ["note": "x: y"])
        XCTAssertEqual(d.server.image, "reg/flwr:1")
        XCTAssertEqual(d.server.imagePullPolicy, "Always")
        XCTAssertEqual(d.server.nodeName, "n1")
        XCTAssertEqual(d.server.port, 9000)
        XCTAssertEqual(d.minClients, 3)
        XCTAssertEqual(d.server.args, ["--seed", "42"])
        XCTAssertEqual(d.client.args, ["--alpha", "0.5"])
        XCTAssertEqual(d.client.numClients, 4)
        XCTAssertFalse(d.client.isolation)
        XCTAssertEqual(d.client.datasetPath, "/data")
        XCTAssertEqual(d.client.privacy?.budget, 2)
        XCTAssertTrue(d.client.allowSharedNodes)
        XCTAssertEqual(d.client.restartPolicy, "Never")
        XCTAssertEqual(d.client.priorityClassName, "fl")
    }

    func testMissingRequiredFields() {
        XCTAssertEqual(problems("apiVersion: flwr.dev/v1\nkind: FLDeployment\nmetadata: {}\nspec: {}\n"),
                       ["missing required field metadata.name"])
        let p = problems("kind: FLDeployment\nmetadata:\n  name: fl\n")
        XCTAssertEqual(p, ["missing required field apiVersion", "missing required field spec"])
    }

    func testUnknownFieldsAreNamedWithPathAndLine() {
        let p = problems(minimal("  client:\n    num_clients: 3\n    colour: blue\n  sever: {}\n"))
        XCTAssertEqual(p.count, 2, "\(p)")
        XCTAssertTrue(p.contains { $0.hasPrefix("unknown field spec.client.colour (line 8)") }, "\(p)")
        XCTAssertTrue(p.contains { $0.hasPrefix("unknown field spec.sever (line 9); spec accepts server, client") }, "\(p)")
    }

    func testNumClientsZero() {
        XCTAssertEqual(problems(minimal("  client:\n    num_clients: 0\n")),
                       ["spec.client.num_clients is 0, outside 1...100000; a federation needs at least 1 client"])
    }

    func testPortOutOfRange() {
        let p = problems(minimal("  server:\n    port: 70000\n  client:\n    port: 0\n"))
        XCTAssertEqual(p, [
            "spec.server.port is 70000, outside 1...65535; use a TCP port between 1 and 65535, e.g. 8080",
            "spec.client.port is 0, outside 1...65535; use a TCP port between 1 and 65535, e.g. 8080",
        ])
    }

    func testWrongTypes() {
        let p = problems(minimal("""
              server:
                port: "8080"
                rounds: 2.5
                args: --rounds
              client:
                isolation: maybe
                privacy:
                  budget: lots

            """))
        XCTAssertEqual(p, [
            "spec.server.port must be an integer, got the string \"8080\" (line 7)",
            "spec.server.rounds must be an integer, got the number 2.5 (line 8)",
            "spec.server.args must be a list of strings, got the string \"--rounds\" (line 9)",
            "spec.client.isolation must be true or false, got the string \"maybe\" (line 11)",
            "spec.client.privacy.budget must be a number, got the string \"lots\" (line 13)",
        ])
    }

    func testImpossibleValues() {
        let p = problems("""
            apiVersion: flwr.dev/v2
            kind: FLDeploy
            metadata: {name: Bad_Name}
            spec:
              server: {replicas: 2, minClients: 5, imagePullPolicy: Sometimes}
              client: {num_clients: 3, dataset: {download: true}, privacy: {budget: 0, rate: 0.5}}
            """)
        XCTAssertEqual(p.count, 9, p.joined(separator: "\n"))
        for fragment in ["set it to flwr.dev/v1", "set it to FLDeployment", "metadata.name \"Bad_Name\"",
                         "spec.server.replicas is 2", "imagePullPolicy \"Sometimes\" must be one of",
                         "spec.client.dataset.download is true", "budget 0.0 must be a positive",
                         "rate 0.5", "minClients 5 exceeds spec.client.num_clients 3"] {
            XCTAssertTrue(p.contains { $0.contains(fragment) }, "no problem mentions \(fragment): \(p)")
        }
    }

    func testNotYAMLOrNotOneDocument() {
        XCTAssertTrue(problems("a: [b")[0].hasPrefix("not valid YAML"))
        XCTAssertEqual(problems(minimal() + "---\n" + minimal()),
                       ["the file holds 2 YAML documents; put exactly one FLDeployment in it"])
        XCTAssertEqual(problems("- a\n"), ["the document must be a mapping, got a list"])
    }

    func testDescriptionListsEveryProblem() {
        let error = DeployError(problems: ["a", "b"])
        XCTAssertEqual(error.description, "invalid FLDeployment (2 problems):\n  - a\n  - b")
        XCTAssertEqual(DeployError(problems: ["a"]).description, "invalid FLDeployment: a")
    }
}
