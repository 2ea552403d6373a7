// Frames over a socket: one frame read with a deadline (payload read straight into its buffer),
// one frame written, byte counters, and the bridge from blocking calls to async code.
import Foundation
import Synchronization

/// Byte totals, safe to read from any thread.
public final class ByteCounter: Sendable {
    private let inBytes = Atomic<Int>(0)
    private let outBytes = Atomic<Int>(0)

    /// Zeroed counters.
    public init() {}

    /// Bytes received so far (frame headers included).
    public var bytesIn: Int { inBytes.load(ordering: .relaxed) }
    /// Bytes sent so far (frame headers included).
    public var bytesOut: Int { outBytes.load(ordering: .relaxed) }

    func addIn(_ n: Int) { inBytes.add(n, ordering: .relaxed) }
    func addOut(_ n: Int) { outBytes.add(n, ordering: .relaxed) }
}

/// Reading and writing whole frames on a socket, counting bytes into `counters`.
struct FramedIO: Sendable {
    let socket: Socket
    let counters: [ByteCounter]

    /// Reads exactly one frame of at most `limit` payload bytes by `deadline`.
    /// A clean end of stream between frames is `connectionClosed`; inside a frame, `truncatedFrame`.
    func readFrame(limit: Int, deadline: Deadline?, timeout: Duration?, what: String, peer: String) throws -> Frame {
        var decoder = FrameDecoder(limit: limit)
        while true {
            var ended = false
            let frame: Frame?
            do {
                frame = try decoder.fill { buffer in
                    let n = try socket.readSome(into: buffer, deadline: deadline, what: what)
                    if n == 0 { ended = true }
                    for c in counters { c.addIn(n) }
                    return n
                }
            } catch WireError.timeout(let operation, _) {
                throw WireError.timeout(operation: operation, seconds: timeout.map(Self.seconds) ?? 0)
            }
            if let frame { return frame }
            if ended {
                guard decoder.bufferedBytes > 0 else { throw WireError.connectionClosed(peer) }
                throw WireError.truncatedFrame(received: decoder.bufferedBytes, expected: decoder.expectedBytes ?? FrameHeader.size)
            }
        }
    }

    /// Writes one encoded frame by `deadline`.
    func write(_ frame: [UInt8], deadline: Deadline?, timeout: Duration?, what: String) throws {
        do {
            try frame.withUnsafeBytes { try socket.writeAll($0, deadline: deadline, what: what) }
        } catch WireError.timeout(let operation, _) {
            throw WireError.timeout(operation: operation, seconds: timeout.map(Self.seconds) ?? 0)
        }
        for c in counters { c.addOut(frame.count) }
    }

    /// After a final frame: stop sending and wait (bounded) for the peer to close, so the last
    /// frame is not lost to a reset from unread bytes.
    func lingeringClose(within: Duration) {
        _ = Glibc.shutdown(socket.fd, Int32(SHUT_WR))
        let deadline = Deadline.after(within)
        var scratch = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = (try? scratch.withUnsafeMutableBytes { try socket.readSome(into: $0, deadline: deadline, what: "close") }) ?? 0
            if n == 0 { break }
        }
        socket.close()
    }

    static func seconds(_ d: Duration) -> Double {
        let (s, atto) = d.components
        return Double(s) + Double(atto) / 1e18
    }
}

/// Runs a blocking `body` on a dedicated thread (never on the cooperative pool) and awaits it.
func onThread<T: Sendable>(_ name: String, _ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, Error>) in
        startThread(name) { continuation.resume(with: Result { try body() }) }
    }
}

/// Starts a detached thread with a 1 MiB stack.
func startThread(_ name: String, _ body: @escaping @Sendable () -> Void) {
    let thread = Thread { body() }
    thread.name = name
    thread.stackSize = 1 << 20
    thread.start()
}

/// A self-pipe: `notify` from any thread wakes a poll() on `readFD`.
final class WakePipe: Sendable {
    let readFD: Int32
    let writeFD: Int32

    init() throws {
        var fds: [Int32] = [0, 0]
        try Sys.call("pipe") { pipe(&fds) }
        readFD = fds[0]
        writeFD = fds[1]
        for fd in fds {
            let flags = fcntl(fd, F_GETFL)
            _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
    }

    deinit {
        Glibc.close(readFD)
        Glibc.close(writeFD)
    }

    func notify() {
        var byte: UInt8 = 1
        _ = Glibc.write(writeFD, &byte, 1)  // a full pipe already means "wake up"
    }

    func drain() {
        var buffer = [UInt8](repeating: 0, count: 64)
        while Glibc.read(readFD, &buffer, buffer.count) > 0 {}
    }
}
