import Foundation
import TestSupport
import XCTest

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
        usleep(200_000)  // another process's HTTP answer changes unannounced: only asking again sees it
        last = try curl(url)
    }
    return last
}
