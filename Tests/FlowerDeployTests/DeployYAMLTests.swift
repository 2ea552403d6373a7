// The YAML writer: strings come back as the same strings through a YAML 1.1 reader (Yams), and
// the layout is the block style kubectl users read.
import XCTest
import Yams
@testable import FlowerDeploy

final class DeployYAMLTests: XCTestCase {
    func testQuotingDecisions() {
        XCTAssertEqual(yamlQuoted("fl-deployment"), "fl-deployment")
        XCTAssertEqual(yamlQuoted("--rounds"), "--rounds")
        XCTAssertEqual(yamlQuoted("/var/lib/flwr"), "/var/lib/flwr")
        XCTAssertEqual(yamlQuoted("app.kubernetes.io/name"), "app.kubernetes.io/name")
        XCTAssertEqual(yamlQuoted("10"), "\"10\"")
        XCTAssertEqual(yamlQuoted("true"), "\"true\"")
        XCTAssertEqual(yamlQuoted("No"), "\"No\"")
        XCTAssertEqual(yamlQuoted(""), "\"\"")
        XCTAssertEqual(yamlQuoted("a: b"), "\"a: b\"")
        XCTAssertEqual(yamlQuoted("say \"hi\"\n"), "\"say \\\"hi\\\"\\n\"")
    }

    func testEveryStringRoundTripsThroughYams() throws {
        let tricky = ["10", "0.7", "-1", "+1", ".5", "1e3", "0x1F", "1_000", "12:30", "2024-01-01", "true", "Yes", "off",
                      "y", "n", "null", "~", "", " lead", "trail ", "a: b", "a #b", "#c", "- x", "-", "---", "*ref",
                      "&a", "!tag", "%x", "@x", "`x", "{a}", "[a]", "a,b", "?", "x:", "fl-deployment-server:8080",
                      "--min-clients", "tab\there", "line\nbreak", "quote\"s", "back\\slash", "ünï", "\u{7}bell",
                      ".inf", "-.inf", ".nan", "500m", "1Gi", "=", "<<"]
        for s in tricky {
            let text = YAMLValue.map([("k", .string(s))]).rendered()
            let loaded = try Yams.load(yaml: text) as? [String: Any]
            XCTAssertEqual(loaded?["k"] as? String, s, "\(s.debugDescription) rendered as \(text.debugDescription)")
        }
    }

    func testBlockLayout() {
        let value = YAMLValue.map([
            ("a", .int(1)),
            ("b", .list([.string("x"), .map([("c", .bool(true)), ("d", .list([]))])])),
            ("e", .map([])),
            ("f", .map([("g", .list([.list([.int(2)])]))])),
        ])
        XCTAssertEqual(value.rendered(), """
            a: 1
            b:
            - x
            - c: true
              d: []
            e: {}
            f:
              g:
              -
                - 2

            """)
    }

    func testRenderedStructureLoadsBackEqual() throws {
        let value = YAMLValue.map([("x", .list([.map([("y", .string("8080")), ("z", .int(8080))])]))])
        let loaded = try XCTUnwrap(try Yams.load(yaml: value.rendered()) as? [String: Any])
        let item = try XCTUnwrap((loaded["x"] as? [Any])?.first as? [String: Any])
        XCTAssertEqual(item["y"] as? String, "8080")
        XCTAssertEqual(item["z"] as? Int, 8080)
    }
}
