// The Flower port under the server's cap on buffered answers (the pool the native wire uses, K
// slots shared by both ports): a large answer waits undecoded for a slot, and its stream is not
// read meanwhile; small answers need none; a stream that ends while waiting leaves the queue.
import FlowerCompat
import FlowerCore
import TestSupport
import Testing

@Suite(.serialized) struct CompatPayloadSlotTests {
    /// 20,000 float32 values: an 80 KB FitRes, above `PayloadSlots.threshold`.
    static let n = 20_000
    static let model = try! Parameters(shapes: [("w", [n])], values: (0 ..< n).map { Float($0) })

    static func answer(_ m: FlowerServerMessage) -> [[UInt8]] {
        guard case .fit = m else { return [evaluateRes()] }
        return [fitRes([tensor([n], (0 ..< n).map { Double($0) + 1 })])]
    }

    /// Waits until an answer waits for a slot (true), woken by the queue's change, at most 30 s.
    static func waitForWaiter(_ slots: PayloadSlots) async -> Bool {
        await slots.waitingCounts().first(within: .seconds(30)) { $0 > 0 } != nil
    }

    /// K = 1 with the slot held by another connection: the FitRes waits for it, an EvaluateRes
    /// (small) does not; once the slot frees, the FitRes is decoded and the slot given back.
    @Test func aLargeAnswerBeyondTheCapWaitsForASlot() async throws {
        #expect(PayloadSlots.threshold < Self.n * 4)
        let slots = PayloadSlots(capacity: 1)
        let h = try await Harness(slots: slots)
        try await h.withPeer(respond: Self.answer) { proxy in
            let other = try await slots.acquire()
            let eval = try await proxy.evaluate(EvaluateIns(round: 1, parameters: Self.model), timeout: .seconds(30))
            #expect(eval.loss == 0.25, "a small answer needs no slot")
            let fit = Task { try await proxy.fit(FitIns(round: 1, parameters: Self.model), timeout: .seconds(120)) }
            #expect(await Self.waitForWaiter(slots), "the FitRes never queued for a slot")
            #expect(slots.waiting == 1, "the FitRes waits for the only slot")
            #expect(slots.held == 1)
            other.release()
            let res = try await fit.value
            #expect(res.parameters.values == (0 ..< Self.n).map { Float($0) + 1 })
            #expect(slots.held == 0, "the slot came back once the FitRes was Parameters")
            #expect(slots.waiting == 0)
        }
        #expect(h.server.peakBufferedPayloads == 1)
        await h.server.stop()
    }

    /// A call that times out while its answer waits for a slot ends the stream; the reader leaves
    /// the queue, and the slot, once freed, returns to the pool.
    @Test func aStreamThatEndsWhileWaitingLeavesTheQueue() async throws {
        let slots = PayloadSlots(capacity: 1)
        let h = try await Harness(slots: slots)
        let other = try await slots.acquire()
        try await h.withPeer(respond: Self.answer) { proxy in
            let fit = Task { try await proxy.fit(FitIns(round: 1, parameters: Self.model), timeout: .seconds(2)) }
            #expect(await Self.waitForWaiter(slots), "the FitRes never queued for a slot")
            #expect(slots.waiting == 1)
            do {
                _ = try await fit.value
                Issue.record("the call answered without a slot")
            } catch {
                #expect("\(error)".contains("did not answer FitIns"), "\(error)")
            }
        }
        #expect(await h.waitUntilUnregistered(), "the timed-out stream ended")
        let left = await slots.waitingCounts().first(within: .seconds(30)) { $0 == 0 }
        #expect(left == 0, "the ended stream's reader left the queue")
        #expect(slots.waiting == 0)
        other.release()
        #expect(slots.held == 0)
        await h.server.stop()
    }
}
