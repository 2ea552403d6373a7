// Small pieces the transport shares: the monotonic deadline, the process's descriptor limit, and the event loops every server and client of this process runs on.
#if canImport(Glibc)
import FlowerWireCodec
import Glibc
#endif
import Logging
import NIOCore
import NIOPosix

/// A point on the monotonic clock after which an operation gives up.
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

    /// Time left (zero once passed).
    package var remaining: Duration {
        let n = Deadline.now.nanos
        return nanos > n ? .nanoseconds(Int64(clamping: nanos - n)) : .zero
    }

    public static func < (a: Deadline, b: Deadline) -> Bool { a.nanos < b.nanos }
}

/// The event loops of this process: one `MultiThreadedEventLoopGroup` with one thread per core
/// (NIO's singleton), shared by the server, its clients in `flwr simulate`, and tools.
public enum WireEventLoops {
    /// The shared group.
    public static var group: MultiThreadedEventLoopGroup { MultiThreadedEventLoopGroup.singleton }
}

/// The process's open-file limit (`RLIMIT_NOFILE`).
public enum DescriptorLimit {
    /// Raises the soft limit to the hard limit; returns (before, after). Containers often start
    /// with a soft limit of 1,024, which would cap a server at about a thousand clients.
    @discardableResult
    public static func raiseToHard() -> (before: UInt64, after: UInt64) {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return (0, 0) }
        let before = UInt64(limit.rlim_cur)
        guard limit.rlim_cur < limit.rlim_max else { return (before, before) }
        var raised = limit
        raised.rlim_cur = limit.rlim_max
        guard setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 else { return (before, before) }
        return (before, UInt64(raised.rlim_cur))
    }

    /// The current soft limit.
    public static var soft: UInt64 {
        var limit = rlimit()
        return getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 ? UInt64(limit.rlim_cur) : 0
    }
}

/// Bounds and escapes a peer-controlled string before it reaches a log line: control characters
/// (newlines that would forge log lines, NUL) are shown escaped, and at most `max` characters kept.
func loggable(_ s: String, max: Int = 128) -> String {
    PeerText.escape(s, maxBytes: max)  // the one escaping helper (WireLimits.swift)
}
