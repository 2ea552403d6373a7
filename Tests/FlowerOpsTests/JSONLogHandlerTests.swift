import Foundation
import Logging
import Testing
@testable import FlowerOps

/// One JSON object per line, readable by Foundation's JSON parser, with hostile text escaped.
struct JSONLogHandlerTests {
    @Test func lineIsOneParsableObject() throws {
        let date = Date(timeIntervalSince1970: 1_764_504_062.345)
        let line = JSONLogHandler.line(time: date, level: .warning, module: "flwr.server",
                                       message: "round 3: fit failure: \"x\"\nforged line\u{1}",
                                       metadata: ["round": "3", "clients": .array(["a", "b"])], source: "FlowerCore")
        #expect(!line.contains("\n"))
        let object = try #require(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["time"] as? String == "2025-11-30T12:01:02.345Z")
        #expect(object["level"] as? String == "warning")
        #expect(object["module"] as? String == "flwr.server")
        #expect(object["message"] as? String == "round 3: fit failure: \"x\"\nforged line\u{1}")
        let metadata = try #require(object["metadata"] as? [String: Any])
        #expect(metadata["round"] as? String == "3")
        #expect(metadata["clients"] as? [String] == ["a", "b"])
    }

    @Test func handlerWritesLinesToItsSink() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("flwr-json-\(UUID().uuidString).log").path
        FileManager.default.createFile(atPath: path, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let sink = JSONLogSink(handle: try #require(FileHandle(forWritingAtPath: path)))
        var logger = Logger(label: "flwr.test") { JSONLogHandler(label: $0, sink: sink) }
        logger.logLevel = .debug
        logger[metadataKey: "partition"] = "4"
        logger.info("joined", metadata: ["session": "s1"])
        logger.trace("not written")
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 1)
        let object = try #require(JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any])
        #expect(object["message"] as? String == "joined")
        #expect(object["metadata"] as? [String: String] == ["partition": "4", "session": "s1"])
    }
}
