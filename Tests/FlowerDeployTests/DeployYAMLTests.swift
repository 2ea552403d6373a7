// The YAML emitted through Yams: strings come back as the same strings through a YAML 1.1 reader (Yams), and
// the layout is the block style kubectl users read.
import XCTest
import Yams
@testable import FlowerDeploy

final class DeployYAMLTests: XCTestCase {
    /// `s` as the value of a one-key mapping, as the emitter writes it.
    private func scalar(_ s: String) throws -> String {
        let text = try YAMLValue.map([("k", .string(s))]).rendered()
        XCTAssertTrue(text.hasPrefix("k: ") && text.hasSuffix("\n"), text)
        return String(text.dropFirst(3).dropLast())
    }

    func testQuotingDecisions() throws {
        XCTAssertEqual(try scalar("fl-deployment"), "fl-deployment")
        XCTAssertEqual(try scalar("--rounds"), "--rounds")
        XCTAssertEqual(try scalar("/var/lib/flwr"), "/var/lib/flwr")
        XCTAssertEqual(try scalar("app.kubernetes.io/name"), "app.kubernetes.io/name")
        XCTAssertEqual(try scalar("10"), "\"10\"")
        XCTAssertEqual(try scalar("true"), "\"true\"")
        XCTAssertEqual(try scalar("No"), "\"No\"")
        XCTAssertEqual(try scalar(""), "\"\"")
        XCTAssertEqual(try scalar("a: b"), "\"a: b\"")
        XCTAssertEqual(try scalar("say \"hi\"\n"), "\"say \\\"hi\\\"\\n\"")
    }

    func testEveryStringRoundTripsThroughYams() throws {
        let tricky = ["10", "0.7", "-1", "+1", ".5", "1e3", "0x1F", "1_000", "12:30", "2024-01-01", "true", "Yes", "off",
                      "y", "n", "null", "~", "", " lead", "trail ", "a: b", "a #b", "#c", "- x", "-", "---", "*ref",
                      "&a", "!tag", "%x", "@x", "`x", "{a}", "[a]", "a,b", "?", "x:", "fl-deployment-server:8080",
                      "--min-clients", "tab\there", "line\nbreak", "quote\"s", "back\\slash", "ünï", "\u{7}bell",
                      ".inf", "-.inf", ".nan", "500m", "1Gi", "=", "<<"]
        for s in tricky {
            let text = try YAMLValue.map([("k", .string(s))]).rendered()
            let loaded = try Yams.load(yaml: text) as? [String: Any]
            XCTAssertEqual(loaded?["k"] as? String, s, "\(s.debugDescription) rendered as \(text.debugDescription)")
        }
    }

    func testBlockLayout() throws {
        let value = YAMLValue.map([
            ("a", .int(1)),
            ("b", .list([.string("x"), .map([("c", .bool(true)), ("d", .list([]))])])),
            ("e", .map([])),
            ("f", .map([("g", .list([.list([.int(2)])]))])),
        ])
        XCTAssertEqual(try value.rendered(), """
            a: 1
            b:
            - x
            - c: true
              d: []
            e: {}
            f:
              g:
              - - 2

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
