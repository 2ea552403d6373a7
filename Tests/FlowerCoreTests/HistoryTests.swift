import FedAvg
import TestSupport
import FlowerCore
import Foundation
import XCTest

final class HistoryTests: XCTestCase {
    func testJsonLineHasExactlyTheDocumentedFieldsInOrder() {
        let r = RoundRecord(round: 4, loss: 0.25, accuracy: nil, fitClients: 9, failures: 1, seconds: 12.5,
                            bytesIn: 31_000_000, bytesOut: 7, fitMetrics: ["x": .double(1)])
        XCTAssertEqual(r.jsonLine, #"{"round":4,"loss":0.25,"accuracy":null,"fit_clients":9,"failures":1,"seconds":12.5,"bytes_in":31000000,"bytes_out":7}"#)
        let nan = RoundRecord(round: 1, loss: .nan, accuracy: .infinity, fitClients: 0, failures: 0, seconds: 1e-5)
        XCTAssertTrue(nan.jsonLine.contains(#""loss":null,"accuracy":null"#), nan.jsonLine)
    }

    func testHostileClientIdsAreEscapedAndParseBack() throws {
        // Client ids come from peers: quotes, backslashes, control characters and non-ASCII must
        // survive the line as the same strings, and the line must stay one line.
        let ids = ["a\"b", "back\\slash", "new\nline", "tab\tbell\u{7}", "ünï/∑", ""]
        let r = RoundRecord(round: 2, loss: 0.5, accuracy: 0.75, fitClients: 3, failures: 0, seconds: 1,
                            malicious: ids, siteEpsilon: Dictionary(uniqueKeysWithValues: ids.enumerated().map { ($1, Double($0) + 0.5) }))
        let line = r.jsonLine
        XCTAssertFalse(line.contains("\n"), line)
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        XCTAssertEqual(object["malicious"] as? [String], ids)
        let sites = try XCTUnwrap(object["site_epsilon"] as? [String: Double])
        for (i, id) in ids.enumerated() { XCTAssertEqual(sites[id], Double(i) + 0.5, id.debugDescription) }
        XCTAssertEqual(object["accuracy"] as? Double, 0.75)
    }

    func testServerWritesOneParsableLinePerRound() async throws {
        let dir = try makeTemporaryFolder("flwr-core-jsonl")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/history.jsonl"
        try "stale line from an older run\n".write(toFile: path, atomically: true, encoding: .utf8)
        let m = InMemoryClientManager()
        for c in [adder("a", delta: [1, 0, 0], numExamples: 1), adder("b", delta: [0, 1, 0], numExamples: 1)] {
            _ = m.register(c)
        }
        let strategy = FedAvg(initialParameters: try model([0, 0, 0]),
                              evaluateFn: { r, _ in (1 / Double(r), ["accuracy": .double(0.1 * Double(r))]) })
        _ = try await Server(clientManager: m, strategy: strategy, options: ServerOptions(historyPath: path))
            .fit(numRounds: 3, timeout: .seconds(30))
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 3, "a fresh run replaces an old file")
        for (i, line) in lines.enumerated() {
            let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], String(line))
            XCTAssertEqual(Set(object.keys), ["round", "loss", "accuracy", "fit_clients", "failures", "seconds",
                                              "bytes_in", "bytes_out"])
            XCTAssertEqual(object["round"] as? Int, i + 1)
            XCTAssertEqual(object["loss"] as? Double ?? .nan, 1 / Double(i + 1), accuracy: 1e-12)
            XCTAssertEqual(object["accuracy"] as? Double ?? .nan, 0.1 * Double(i + 1), accuracy: 1e-12)
            XCTAssertEqual(object["fit_clients"] as? Int, 2)
            XCTAssertEqual(object["bytes_out"] as? Int, 2 * 12)
        }
    }
}
