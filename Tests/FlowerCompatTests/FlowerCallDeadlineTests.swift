// The Flower proxy's call deadline on an event-loop timer (NIO's async testing loop, whose time
// moves only when the test advances it): nothing happens before the deadline; at it the call
// fails, the stream ends, and an answer that still comes is dropped and counted; an answer in
// time cancels the deadline and the next call may go out.
@testable import FlowerCompat
import FlowerCore
import FlowerWireCodec
import Logging
import NIOEmbedded
import Testing

@Suite struct FlowerCallDeadlineTests {
    static let answer = FlowerClientMessage.evaluateRes(status: .ok, loss: 0.5, numExamples: 4, metrics: ["accuracy": .double(0.75)])

    /// A proxy whose deadlines run on `loop`, and what it sends.
    func proxy(on loop: NIOAsyncTestingEventLoop) -> (FlowerClientProxy, AsyncStream<[UInt8]>.AsyncIterator) {
        let (sent, outbound) = AsyncStream.makeStream(of: [UInt8].self)
        let proxy = FlowerClientProxy(id: "flower-t", peer: "peer", outbound: outbound, reference: nil,
                                      clock: EventLoopClock(loop), logger: Logger(label: "test"))
        return (proxy, sent.makeAsyncIterator())
    }

    @Test func deadlineEndsTheStreamAndALateAnswerIsDropped() async throws {
        let loop = NIOAsyncTestingEventLoop()
        var (proxy, sent) = proxy(on: loop)
        let call = Task { try await proxy.evaluate(EvaluateIns(round: 1, parameters: reference), timeout: .seconds(5)) }
        let instruction = try #require(await sent.next())
        guard case .success(.evaluate) = instruction.withUnsafeBytes({ CompatCodec.decodeServerMessage($0) }) else {
            Issue.record("not an EvaluateIns"); return
        }
        await loop.advanceTime(by: .milliseconds(4_999))
        #expect(proxy.isConnected, "nothing before the deadline")
        await loop.advanceTime(by: .milliseconds(1))
        do {
            _ = try await call.value
            Issue.record("the call outlived its deadline")
        } catch let error as CompatError {
            guard case .timeout(let what) = error else { Issue.record("\(error)"); return }
            #expect(what.contains("flower-t did not answer EvaluateIns"), "\(what)")
        }
        #expect(await sent.next() == nil, "the stream ended")
        #expect(!proxy.isConnected)
        guard case .timeout? = proxy.failure else { Issue.record("failure: \(String(describing: proxy.failure))"); return }

        proxy.deliver(.success(Self.answer), bytes: 40)
        #expect(proxy.lateAnswers == 1, "the late answer is counted")
        #expect(proxy.bytesIn == 40)
        guard case .timeout? = proxy.failure else { Issue.record("the late answer changed the failure"); return }
        try await loop.shutdownGracefully()
    }

    @Test func answerInTimeCancelsTheDeadline() async throws {
        let loop = NIOAsyncTestingEventLoop()
        var (proxy, sent) = proxy(on: loop)
        let call = Task { try await proxy.evaluate(EvaluateIns(round: 2, parameters: reference), timeout: .seconds(5)) }
        _ = try #require(await sent.next())
        proxy.deliver(.success(Self.answer), bytes: 40)
        let res = try await call.value
        #expect(res.round == 2 && res.loss == 0.5 && res.numExamples == 4)
        #expect(res.metrics["accuracy"] == .double(0.75))
        await loop.advanceTime(by: .seconds(60))
        #expect(proxy.isConnected, "the deadline was cancelled")
        #expect(proxy.failure == nil)
        #expect(proxy.lateAnswers == 0)

        let next = Task { try await proxy.evaluate(EvaluateIns(round: 3, parameters: reference), timeout: .seconds(5)) }
        _ = try #require(await sent.next(), "the next call goes out")
        proxy.deliver(.success(Self.answer), bytes: 40)
        #expect(try await next.value.round == 3)
        try await loop.shutdownGracefully()
    }
}
