import Foundation
import XCTest

/// A `flwr` child process whose output goes to a file the test polls (operations tests).
final class OpsChild {
    let process = Process()
    let logPath: String

    init(_ arguments: [String], log: String, environment: [String: String] = [:]) throws {
        logPath = log
        FileManager.default.createFile(atPath: log, contents: nil)
        process.executableURL = URL(fileURLWithPath: try flwrBinaryPath())
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        process.standardError = handle
        process.standardOutput = handle
        try process.run()
    }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// The first capture of `pattern` in the log, waiting (polling) up to `seconds` for it.
    func waitForLog(_ pattern: String, seconds: Double) -> String? {
        let regex = try? NSRegularExpression(pattern: pattern)
        let deadline = Date().addingTimeInterval(seconds)
        repeat {
            let text = log
            if let m = regex?.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) {
                let r = m.numberOfRanges > 1 ? m.range(at: 1) : m.range
                if let range = Range(r, in: text) { return String(text[range]) }
            }
            if !process.isRunning { return nil }
            usleep(100_000)
        } while Date() < deadline
        return nil
    }

    /// Waits for exit (killing after `seconds`); the exit status, or nil when it had to be killed.
    func wait(seconds: Double) -> Int32? {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline { usleep(50_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit(); return nil }
        return process.terminationStatus
    }

    func stop() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
}

/// One HTTP answer as Debian's curl saw it.
struct CurlAnswer {
    /// curl's exit status (0: an HTTP answer arrived; 28: timed out; 7: refused).
    var exit: Int32
    /// HTTP status (0 without an answer).
    var code: Int
    var body: String
}

/// `curl` (Debian's; installed by scripts/bootstrap when missing) against `url`.
func curl(_ url: String, method: String = "GET", maxTime: Int = 10) throws -> CurlAnswer {
    if !FileManager.default.isExecutableFile(atPath: "/usr/bin/curl") {
        _ = try runProgram(packageRoot.appendingPathComponent("scripts/bootstrap").path, ["curl"])
    }
    let r = try runProgram("/usr/bin/curl", ["-s", "-X", method, "--max-time", "\(maxTime)", "-w", "\n%{http_code}", url])
    var lines = r.output.components(separatedBy: "\n")
    let code = Int(lines.popLast() ?? "") ?? 0
    return CurlAnswer(exit: r.status, code: code, body: lines.joined(separator: "\n"))
}

/// Polls `url` until `done` holds for its answer (at most `seconds`); the last answer.
func curlUntil(_ url: String, seconds: Double, _ done: (CurlAnswer) -> Bool) throws -> CurlAnswer {
    let deadline = Date().addingTimeInterval(seconds)
    var last = try curl(url)
    while !done(last) && Date() < deadline {
        usleep(200_000)
        last = try curl(url)
    }
    return last
}

/// A fresh temporary folder removed after the test.
func opsTemporaryDirectory(_ test: XCTestCase) throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("flwr-ops-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
    return dir
}
