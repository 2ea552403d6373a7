// The timer both transports give FlowerCore's `OutstandingCall`: an event loop's `scheduleTask`
// (the native wire's channel loop; for the Flower port, a loop of the group grpc-swift-nio-
// transport serves it on). Here because this is the one NIOCore module both transports import.
import FlowerCore
import NIOCore

/// Deadlines on an event loop's timer.
public struct EventLoopClock: DeadlineClock {
    public let loop: any EventLoop

    public init(_ loop: any EventLoop) { self.loop = loop }

    public func schedule(after delay: Duration, _ fire: @escaping @Sendable () -> Void) -> any ScheduledDeadline {
        loop.scheduleTask(in: timeAmount(delay)) { fire() }
    }
}

extension Scheduled: ScheduledDeadline {}

/// `Duration` → NIO's `TimeAmount` (saturating).
package func timeAmount(_ d: Duration) -> TimeAmount {
    let (s, atto) = d.components
    return .nanoseconds(s.multipliedReportingOverflow(by: 1_000_000_000).overflow ? .max : s * 1_000_000_000 + atto / 1_000_000_000)
}
