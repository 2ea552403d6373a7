// The one place FlowerWire makes system calls: EINTR retried, partial writes completed, deadlines
// through poll(), and every failure names the call. Sockets are non-blocking; SIGPIPE is ignored
// (and send uses MSG_NOSIGNAL), TCP_NODELAY and keepalive are on.
#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// A point on the monotonic clock after which an operation gives up; `nil` deadlines wait forever.
public struct Deadline: Sendable, Comparable {
    /// Nanoseconds on CLOCK_MONOTONIC.
    let nanos: UInt64

    /// Now on the monotonic clock.
    public static var now: Deadline {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Deadline(nanos: UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec))
    }

    /// `duration` from now.
    public static func after(_ duration: Duration) -> Deadline {
        let (s, atto) = duration.components
        let ns = max(0, s) * 1_000_000_000 + max(0, atto / 1_000_000_000)
        return Deadline(nanos: now.nanos &+ UInt64(clamping: ns))
    }

    /// Milliseconds left, rounded up, at least 0 (for poll).
    var remainingMillis: Int32 {
        let n = Deadline.now.nanos
        guard nanos > n else { return 0 }
        return Int32(clamping: (nanos - n + 999_999) / 1_000_000)
    }

    public static func < (a: Deadline, b: Deadline) -> Bool { a.nanos < b.nanos }
}

/// System-call wrappers.
enum Sys {
    /// Ignores SIGPIPE process-wide once (a closed peer then yields EPIPE, not death).
    static let ignoreSIGPIPE: Void = { _ = signal(SIGPIPE, SIG_IGN) }()

    /// Runs `body` until it does not fail with EINTR; throws a `system` error naming `call`.
    @discardableResult
    static func call<T: BinaryInteger>(_ name: String, _ body: () -> T) throws -> T {
        while true {
            let r = body()
            if r >= 0 { return r }
            let e = errno
            if e == EINTR { continue }
            throw error(name, e)
        }
    }

    static func error(_ call: String, _ code: Int32) -> WireError {
        .system(call: call, errno: code, detail: String(cString: strerror(code)))
    }

    /// Waits until `fd` is ready for `events` or the deadline passes (false on timeout).
    static func wait(_ fd: Int32, events: Int16, deadline: Deadline?) throws -> Bool {
        while true {
            var p = pollfd(fd: fd, events: events, revents: 0)
            let timeout: Int32 = deadline.map { $0.remainingMillis } ?? -1
            let r = poll(&p, 1, timeout)
            if r < 0 {
                if errno == EINTR { continue }
                throw error("poll", errno)
            }
            if r == 0 {
                if let deadline, Deadline.now < deadline { continue }
                return false
            }
            return true
        }
    }
}

/// A non-blocking TCP socket owned by one thread at a time; `shutdown` may come from any thread.
final class Socket: Sendable {
    /// The file descriptor (closed once by `close`).
    let fd: Int32
    private let closed = Atomic<Bool>(false)

    init(fd: Int32) { self.fd = fd }

    deinit { close() }

    /// Closes the descriptor (idempotent). Only the owning thread calls this.
    func close() {
        if !closed.exchange(true, ordering: .acquiringAndReleasing) { _ = Glibc.close(fd) }
    }

    /// Wakes any thread blocked on this socket (its reads see end of stream); safe from any thread.
    func shutdown() {
        if !closed.load(ordering: .acquiring) { _ = Glibc.shutdown(fd, Int32(SHUT_RDWR)) }
    }

    /// Reads at most `buffer.count` bytes; 0 means the peer closed. Waits until `deadline`.
    func readSome(into buffer: UnsafeMutableRawBufferPointer, deadline: Deadline?, what: @autoclosure () -> String) throws -> Int {
        guard buffer.count > 0 else { return 0 }
        while true {
            let n = Glibc.read(fd, buffer.baseAddress, buffer.count)
            if n >= 0 { return n }
            let e = errno
            switch e {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK:
                guard try Sys.wait(fd, events: Int16(POLLIN), deadline: deadline) else {
                    throw WireError.timeout(operation: what(), seconds: 0)
                }
            case ECONNRESET: return 0
            default: throw Sys.error("read", e)
            }
        }
    }

    /// Writes all of `bytes`, across partial writes, by `deadline`.
    func writeAll(_ bytes: UnsafeRawBufferPointer, deadline: Deadline?, what: @autoclosure () -> String) throws {
        var offset = 0
        while offset < bytes.count {
            guard let base = bytes.baseAddress else { return }
            let n = send(fd, base + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
            if n >= 0 { offset += n; continue }
            let e = errno
            switch e {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK:
                guard try Sys.wait(fd, events: Int16(POLLOUT), deadline: deadline) else {
                    throw WireError.timeout(operation: what(), seconds: 0)
                }
            case EPIPE, ECONNRESET: throw WireError.connectionClosed("the peer (\(what()) could not be sent)")
            default: throw Sys.error("send", e)
            }
        }
    }

    /// Makes the descriptor non-blocking and sets TCP_NODELAY and keepalive (60 s idle, 6 × 10 s probes).
    static func configure(_ fd: Int32) throws {
        let flags = try Sys.call("fcntl(F_GETFL)") { fcntl(fd, F_GETFL) }
        try Sys.call("fcntl(F_SETFL, O_NONBLOCK)") { fcntl(fd, F_SETFL, flags | O_NONBLOCK) }
        try setOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1, "setsockopt(TCP_NODELAY)")
        try setOption(fd, SOL_SOCKET, SO_KEEPALIVE, 1, "setsockopt(SO_KEEPALIVE)")
        try setOption(fd, Int32(IPPROTO_TCP), TCP_KEEPIDLE, 60, "setsockopt(TCP_KEEPIDLE)")
        try setOption(fd, Int32(IPPROTO_TCP), TCP_KEEPINTVL, 10, "setsockopt(TCP_KEEPINTVL)")
        try setOption(fd, Int32(IPPROTO_TCP), TCP_KEEPCNT, 6, "setsockopt(TCP_KEEPCNT)")
    }

    static func setOption(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32, _ call: String) throws {
        var v = value
        try Sys.call(call) { setsockopt(fd, level, name, &v, socklen_t(MemoryLayout<Int32>.size)) }
    }

    /// Resolved stream addresses for `host:port` (passive for listening).
    static func resolve(host: String, port: Int, passive: Bool) throws -> [(family: Int32, addr: [UInt8])] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = passive ? AI_PASSIVE : 0
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host.isEmpty ? nil : host, String(port), &hints, &list)
        guard rc == 0 else { throw WireError.resolve(host: host, detail: String(cString: gai_strerror(rc))) }
        defer { freeaddrinfo(list) }
        var out: [(Int32, [UInt8])] = []
        var node = list
        while let n = node {
            if let a = n.pointee.ai_addr {
                let bytes = Array(UnsafeRawBufferPointer(start: a, count: Int(n.pointee.ai_addrlen)))
                out.append((n.pointee.ai_family, bytes))
            }
            node = n.pointee.ai_next
        }
        guard !out.isEmpty else { throw WireError.resolve(host: host, detail: "no addresses") }
        return out
    }

    /// Connects to `host:port` by `deadline`, trying each resolved address in turn.
    static func connect(host: String, port: Int, deadline: Deadline) throws -> Socket {
        _ = Sys.ignoreSIGPIPE
        var lastError: Error = WireError.resolve(host: host, detail: "no addresses")
        for (family, addr) in try resolve(host: host, port: port, passive: false) {
            do {
                let fd = try Sys.call("socket") { Glibc.socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
                let socket = Socket(fd: fd)
                try configure(fd)
                let rc = addr.withUnsafeBytes { Glibc.connect(fd, $0.baseAddress?.assumingMemoryBound(to: sockaddr.self), socklen_t($0.count)) }
                if rc < 0 {
                    let e = errno
                    guard e == EINPROGRESS || e == EINTR else { throw Sys.error("connect", e) }
                    guard try Sys.wait(fd, events: Int16(POLLOUT), deadline: deadline) else {
                        throw WireError.timeout(operation: "connect to \(host):\(port)", seconds: 0)
                    }
                    var err: Int32 = 0
                    var len = socklen_t(MemoryLayout<Int32>.size)
                    try Sys.call("getsockopt(SO_ERROR)") { getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) }
                    guard err == 0 else { throw Sys.error("connect", err) }
                }
                return socket
            } catch {
                lastError = error
            }
        }
        throw lastError
    }

    /// A listening socket on `host:port` (0 = ephemeral) and the port it got.
    static func listen(host: String, port: Int, backlog: Int32 = 1024) throws -> (Socket, Int) {
        _ = Sys.ignoreSIGPIPE
        let (family, addr) = try resolve(host: host, port: port, passive: true)[0]
        let fd = try Sys.call("socket") { Glibc.socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
        let socket = Socket(fd: fd)
        try setOption(fd, SOL_SOCKET, SO_REUSEADDR, 1, "setsockopt(SO_REUSEADDR)")
        _ = try addr.withUnsafeBytes { a in
            try Sys.call("bind \(host):\(port)") { bind(fd, a.baseAddress?.assumingMemoryBound(to: sockaddr.self), socklen_t(a.count)) }
        }
        try Sys.call("listen") { Glibc.listen(fd, backlog) }
        let flags = try Sys.call("fcntl(F_GETFL)") { fcntl(fd, F_GETFL) }
        try Sys.call("fcntl(F_SETFL, O_NONBLOCK)") { fcntl(fd, F_SETFL, flags | O_NONBLOCK) }
        var storage = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = try withUnsafeMutablePointer(to: &storage) { p in
            try p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                try Sys.call("getsockname") { getsockname(fd, sa, &len) }
            }
        }
        let boundFamily = Int32(storage.ss_family)
        let bound: Int = withUnsafePointer(to: &storage) { p in
            if boundFamily == AF_INET6 {
                return p.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin6_port)) }
            }
            return p.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin_port)) }
        }
        return (socket, bound)
    }

    /// Accepts one pending connection (configured), or nil when none is pending.
    func accept() throws -> (Socket, String)? {
        var storage = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        while true {
            let fd = withUnsafeMutablePointer(to: &storage) { p in
                p.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.accept(self.fd, $0, &len) }
            }
            if fd >= 0 {
                let socket = Socket(fd: fd)
                try Sys.call("fcntl(F_SETFD, FD_CLOEXEC)") { fcntl(fd, F_SETFD, FD_CLOEXEC) }
                try Socket.configure(fd)
                return (socket, Socket.describe(&storage))
            }
            let e = errno
            switch e {
            case EINTR, ECONNABORTED, EPROTO: continue
            case EAGAIN, EWOULDBLOCK: return nil
            default: throw Sys.error("accept", e)
            }
        }
    }

    static func describe(_ storage: inout sockaddr_storage) -> String {
        var host = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        var serv = [CChar](repeating: 0, count: Int(NI_MAXSERV))
        let rc = withUnsafePointer(to: &storage) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                getnameinfo($0, socklen_t(MemoryLayout<sockaddr_storage>.size), &host, socklen_t(host.count), &serv, socklen_t(serv.count), NI_NUMERICHOST | NI_NUMERICSERV)
            }
        }
        guard rc == 0 else { return "?" }
        func text(_ chars: [CChar]) -> String {
            String(decoding: chars.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        return text(host) + ":" + text(serv)
    }
}
