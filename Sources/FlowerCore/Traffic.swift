import Synchronization

/// A transport's byte counters, adopted optionally by a `ClientProxy` (FlowerWire's does) so the
/// server can report bytes in/out per round. Counters are cumulative over the connection.
public protocol TrafficCounting: Sendable {
    /// Bytes received from the client so far (frames as sent on the wire, headers included).
    var bytesIn: UInt64 { get }
    /// Bytes sent to the client so far.
    var bytesOut: UInt64 { get }
}

/// Byte totals of one connection (or one listener), safe to update and read from any thread: both
/// transports' proxies count into one (the native wire its frames, headers included; the Flower
/// port its protobuf messages).
public final class ByteCounter: Sendable {
    private let inBytes = Atomic<Int>(0)
    private let outBytes = Atomic<Int>(0)

    /// Zeroed counters.
    public init() {}

    /// Bytes received so far.
    public var bytesIn: Int { inBytes.load(ordering: .relaxed) }
    /// Bytes sent so far.
    public var bytesOut: Int { outBytes.load(ordering: .relaxed) }

    public func addIn(_ n: Int) { inBytes.add(n, ordering: .relaxed) }
    public func addOut(_ n: Int) { outBytes.add(n, ordering: .relaxed) }
}

/// Per-round traffic bookkeeping: counters snapshotted when a proxy joins the round, deltas at the end.
struct TrafficLedger {
    private var start: [ObjectIdentifier: (proxy: any ClientProxy, bytesIn: UInt64, bytesOut: UInt64)] = [:]

    /// Remembers the counters of proxies not yet seen this round.
    mutating func note(_ proxies: [any ClientProxy]) {
        for p in proxies {
            let key = ObjectIdentifier(p)
            guard start[key] == nil, let c = p as? any TrafficCounting else { continue }
            start[key] = (p, c.bytesIn, c.bytesOut)
        }
    }

    /// Bytes moved since each proxy was noted (counters that went backwards count as zero).
    func totals() -> (bytesIn: UInt64, bytesOut: UInt64) {
        var bytesIn: UInt64 = 0, bytesOut: UInt64 = 0
        for (_, s) in start {
            guard let c = s.proxy as? any TrafficCounting else { continue }
            bytesIn &+= c.bytesIn >= s.bytesIn ? c.bytesIn - s.bytesIn : 0
            bytesOut &+= c.bytesOut >= s.bytesOut ? c.bytesOut - s.bytesOut : 0
        }
        return (bytesIn, bytesOut)
    }
}
