// What the container test runs on the host: programs with a time bound, podman (with the runtime
// and limits that work on these machines), and an HTTP GET from outside the containers.
import Foundation
import XCTest

/// Runs `arguments` (the first is looked up in PATH) to completion, killed after `timeout`
/// seconds by coreutils' `timeout`; stdout and stderr merged.
@discardableResult
func execute(_ arguments: [String], timeout: Int = 120, environment: [String: String] = [:]) throws -> (status: Int32, output: String) {
    let p = Process()
    // Every descriptor above 2 is closed before exec: Foundation notices a child's exit through a
    // descriptor the child inherits, and `podman run -d` leaves conmon (the container's monitor)
    // running with whatever podman inherited.
    p.executableURL = URL(fileURLWithPath: "/bin/bash")
    p.arguments = ["-c", "for fd in $(ls /proc/$$/fd); do [ \"$fd\" -gt 2 ] && eval \"exec $fd>&-\"; done; exec \"$@\"", "sh",
                   "timeout", "--kill-after=10", String(timeout)] + arguments
    if !environment.isEmpty { p.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new } }
    // A file, not a pipe: conmon keeps podman's output descriptors open, so a pipe would never
    // reach end-of-file.
    let log = FileManager.default.temporaryDirectory.appendingPathComponent("flwr-container-\(UUID().uuidString).log")
    FileManager.default.createFile(atPath: log.path, contents: nil)
    defer { try? FileManager.default.removeItem(at: log) }
    let handle = try FileHandle(forWritingTo: log)
    p.standardOutput = handle
    p.standardError = handle
    try p.run()
    p.waitUntilExit()
    try handle.close()
    return (p.terminationStatus, String(decoding: try Data(contentsOf: log), as: UTF8.self))
}

/// podman as it runs here: runc (crun cannot run with these machines' hybrid cgroups).
enum Podman {
    /// Limits podman must set explicitly here (its defaults are refused by setrlimit).
    static let limits = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]

    static var installed: Bool {
        ["/usr/bin/podman", "/usr/local/bin/podman"].contains { FileManager.default.isExecutableFile(atPath: $0) }
    }

    @discardableResult
    static func call(_ arguments: [String], timeout: Int = 120, check: Bool = true) throws -> String {
        let (status, output) = try execute(["podman", "--runtime", "runc"] + arguments, timeout: timeout)
        if check && status != 0 {
            throw PodmanError(message: "podman \(arguments.prefix(3).joined(separator: " ")) … exited \(status): \(output)")
        }
        return output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Waits for a container to exit (at most `timeout` seconds) and returns its exit code.
    static func wait(_ name: String, timeout: Int) throws -> Int32 {
        let out = try call(["wait", name], timeout: timeout)
        return try XCTUnwrap(Int32(out.split(separator: "\n").last.map(String.init) ?? ""), "podman wait \(name) said \(out)")
    }

    static func logs(_ name: String) -> String { (try? call(["logs", name], check: false)) ?? "" }
}

struct PodmanError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

/// One HTTP/1.0 GET to 127.0.0.1:port (the container's published ops port): status and body,
/// or nil when nothing answers yet.
func httpGet(port: Int, path: String) -> (status: Int, body: String)? {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var tv = timeval(tv_sec: 5, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = in_port_t(UInt16(port).bigEndian)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    let connected = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else { return nil }
    let request = Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".utf8)
    guard send(fd, request, request.count, 0) == request.count else { return nil }
    var response: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = recv(fd, &buffer, buffer.count, 0)
        if n <= 0 { break }
        response += buffer[0 ..< n]
        if complete(response) { break }
    }
    let text = String(decoding: response, as: UTF8.self)
    guard let statusLine = text.split(separator: "\r\n").first, statusLine.hasPrefix("HTTP/"),
          let code = Int(statusLine.split(separator: " ").dropFirst().first ?? "") else { return nil }
    let body = text.range(of: "\r\n\r\n").map { String(text[$0.upperBound...]) } ?? ""
    return (code, body)
}

/// Whether `response` holds the headers and as many body bytes as Content-Length says.
private func complete(_ response: [UInt8]) -> Bool {
    let text = String(decoding: response, as: UTF8.self)
    guard let end = text.range(of: "\r\n\r\n") else { return false }
    let headers = text[..<end.lowerBound].lowercased()
    guard let line = headers.split(separator: "\r\n").first(where: { $0.hasPrefix("content-length:") }),
          let length = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) else { return false }
    return text[end.upperBound...].utf8.count >= length
}
