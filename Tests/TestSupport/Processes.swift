// Running other programs from tests: a command to completion (its two streams captured apart), a
// Python peer, and a long-running child (flwr server/client) whose output goes to a log file.
import Foundation
import Synchronization

/// What a finished program left: its exit status and both output streams.
public struct ProgramOutput: Sendable {
    public let status: Int32
    public let stdout: String
    public let stderr: String
    /// Both streams, stdout first (what a person would read).
    public var output: String { stdout + stderr }
}

/// Runs `executable` (a path, or a name looked up on PATH through /usr/bin/env) with `arguments`
/// to completion. Both streams go to temporary files, so a chatty program cannot fill a pipe and
/// block; `input` is written to its standard input.
public func runProgram(_ executable: String, _ arguments: [String], input: String? = nil,
                       environment: [String: String]? = nil, directory: String? = nil) throws -> ProgramOutput {
    let process = Process()
    if executable.hasPrefix("/") {
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
    } else {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [executable] + arguments
    }
    if let environment { process.environment = environment }
    if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
    let base = FileManager.default.temporaryDirectory.appendingPathComponent("flwr-run-\(UUID().uuidString)")
    let outURL = base.appendingPathExtension("out"), errURL = base.appendingPathExtension("err")
    FileManager.default.createFile(atPath: outURL.path, contents: nil)
    FileManager.default.createFile(atPath: errURL.path, contents: nil)
    defer { try? FileManager.default.removeItem(at: outURL); try? FileManager.default.removeItem(at: errURL) }
    let outHandle = try FileHandle(forWritingTo: outURL), errHandle = try FileHandle(forWritingTo: errURL)
    process.standardOutput = outHandle
    process.standardError = errHandle
    let stdin = Pipe()
    process.standardInput = input == nil ? FileHandle.nullDevice : stdin
    try process.run()
    if let input {
        stdin.fileHandleForWriting.write(Data(input.utf8))
        try stdin.fileHandleForWriting.close()
    }
    process.waitUntilExit()
    try outHandle.close(); try errHandle.close()
    return ProgramOutput(status: process.terminationStatus,
                         stdout: (try? String(contentsOf: outURL, encoding: .utf8)) ?? "",
                         stderr: (try? String(contentsOf: errURL, encoding: .utf8)) ?? "")
}

/// Runs `python3 -c script` (stdin: `input`).
public func runPython(_ script: String, input: String? = nil) throws -> ProgramOutput {
    try runProgram("python3", ["-c", script], input: input)
}

/// Whether `python3` can import every module (the peers scripts/test-peers installs).
public func pythonCanImport(_ modules: [String]) -> Bool {
    (try? runPython("import " + modules.joined(separator: ", ")).status) == 0
}

/// A program started in the background, its stdout and stderr appended to `logPath`. Waiting
/// uses the process's termination notification and, for log lines, the kernel's notice that the
/// log changed (inotify), not polling.
public final class ChildProcess: Sendable {
    public let logPath: String
    private let process: Mutex<Process>
    private let exited = DispatchSemaphore(value: 0)
    /// Readable once the child has exited (the termination handler writes a byte), so a wait for
    /// a log line can sleep on the log's changes and the exit at once.
    private let exitSignal: (read: Int32, write: Int32)

    public init(_ executable: String, _ arguments: [String], log: String, environment: [String: String]? = nil,
                directory: String? = nil) throws {
        logPath = log
        FileManager.default.createFile(atPath: log, contents: nil)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = arguments
        if let environment { p.environment = environment }
        if let directory { p.currentDirectoryURL = URL(fileURLWithPath: directory) }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        p.standardOutput = handle
        p.standardError = handle
        p.standardInput = FileHandle.nullDevice
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { throw TestFailure("pipe() failed: errno \(errno)") }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }   // not inherited by this or any other child
        exitSignal = (fds[0], fds[1])
        let exited = self.exited, signalFD = fds[1]
        p.terminationHandler = { _ in
            var byte: UInt8 = 1
            _ = write(signalFD, &byte, 1)
            exited.signal()
        }
        process = Mutex(p)
        do { try p.run() } catch {
            close(fds[0]); close(fds[1])
            throw error
        }
    }

    deinit {
        close(exitSignal.read)
        close(exitSignal.write)
    }

    /// Everything the child has written so far.
    public var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }
    public var pid: Int32 { process.withLock { $0.processIdentifier } }
    public var isRunning: Bool { process.withLock { $0.isRunning } }

    /// Waits up to `seconds` for the child to exit; kills it (SIGKILL) past that and returns nil,
    /// else its exit status.
    public func wait(seconds: Double) -> Int32? {
        if exited.wait(timeout: .now() + seconds) == .timedOut {
            kill(pid, SIGKILL)
            exited.wait()
            exited.signal()
            return nil
        }
        exited.signal()   // later waits return at once
        return process.withLock { $0.terminationStatus }
    }

    /// Sends `signal` (e.g. SIGTERM) to the child.
    public func send(_ signal: Int32) { kill(pid, signal) }

    /// Kills the child if it still runs and waits for it.
    public func killHard() {
        guard isRunning else { return }
        kill(pid, SIGKILL)
        exited.wait()
        exited.signal()
    }
}

extension ChildProcess {
    /// The release `flwr` binary beside the test bundle, started with `arguments`; `environment` is
    /// added to this process's environment.
    public static func flwr(_ arguments: [String], log: String, environment: [String: String] = [:]) throws -> ChildProcess {
        try ChildProcess(try flwrBinaryPath(), arguments, log: log,
                         environment: ProcessInfo.processInfo.environment.merging(environment) { _, new in new })
    }

    /// The first capture group of `pattern` (or the whole match) in the log, re-reading the log
    /// each time it changes until the line appears, the child exits, or `seconds` pass; nil in the
    /// last two cases. Sleeps on inotify's notice of a write to the log and on the exit, not on a
    /// clock.
    public func waitForLog(_ pattern: String, seconds: Double) -> String? {
        guard let regex = try? NSRegularExpression(pattern: pattern) else { return nil }
        func match() -> String? {
            let text = log
            guard let m = regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)),
                  let range = Range(m.numberOfRanges > 1 ? m.range(at: 1) : m.range, in: text) else { return nil }
            return String(text[range])
        }
        // Watching starts before the first read, so a write between a read and the sleep wakes it.
        // Without inotify (no instance left) the loop re-reads the log every 50 ms instead.
        var watch = inotify_init1(Int32(IN_CLOEXEC | IN_NONBLOCK))
        if watch >= 0, inotify_add_watch(watch, logPath, UInt32(IN_MODIFY)) < 0 { close(watch); watch = -1 }
        defer { if watch >= 0 { close(watch) } }
        let deadline = Date().addingTimeInterval(seconds)
        var events = [UInt8](repeating: 0, count: 4096)
        var ended = false
        while true {
            if let found = match() { return found }
            if ended { return nil }   // that was the read after the exit (the line may land just before it)
            let left = deadline.timeIntervalSinceNow
            if left <= 0 { return nil }
            var fds = [pollfd(fd: watch, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: exitSignal.read, events: Int16(POLLIN), revents: 0)]
            _ = poll(&fds, 2, Int32(min(left * 1000, watch >= 0 ? Double(Int32.max) : 50).rounded(.up)))
            if fds[0].revents != 0 { _ = read(watch, &events, events.count) }   // drain; the loop re-reads the log
            if fds[1].revents != 0 { ended = true }
        }
    }

    /// Whether `needle` appears in the log within `seconds` (false when the child exits first).
    public func waitFor(_ needle: String, seconds: Double) -> Bool {
        waitForLog(NSRegularExpression.escapedPattern(for: needle), seconds: seconds) != nil
    }

    /// The port a `flwr server` started with `--port 0` bound, from its "listening on host:port;" line.
    public func listeningPort(seconds: Double = 60) throws -> Int {
        guard let text = waitForLog(#"listening on [^ ]+:(\d+);"#, seconds: seconds), let port = Int(text) else {
            throw TestFailure("no 'listening on' line within \(Int(seconds)) s; log:\n\(log)")
        }
        return port
    }
}

/// A loopback TCP port that was free a moment ago: bound to port 0 (the kernel picks), read back,
/// closed. For peers that cannot be told `--port 0` and report the port (Flower's Python server);
/// our own servers take port 0 and print the port they bound.
public func reserveLoopbackPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TestFailure("socket() failed: errno \(errno)") }
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
    }
    guard bound else { throw TestFailure("binding a loopback port failed: errno \(errno)") }
    return Int(UInt16(bigEndian: addr.sin_port))
}
