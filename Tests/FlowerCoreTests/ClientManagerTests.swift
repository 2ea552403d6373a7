import FlowerCore
import TestSupport
import XCTest

final class ClientManagerTests: XCTestCase {
    private func client(_ id: String) -> FakeClient {
        FakeClient(id, onFit: { ins, _ in FitRes(round: ins.round, parameters: ins.parameters, numExamples: 1) })
    }

    func testDuplicateIdentityAndFullServerAreRefused() {
        let m = InMemoryClientManager(maxClients: 2)
        XCTAssertNoThrow(try m.register(client("a")).get())
        XCTAssertEqual(m.register(client("a")).refusal, .duplicateIdentity("a"))
        XCTAssertNoThrow(try m.register(client("b")).get())
        XCTAssertEqual(m.register(client("c")).refusal, .serverFull(max: 2))
        m.unregister(id: "a")
        m.unregister(id: "absent")
        XCTAssertEqual(m.count, 1)
        XCTAssertNoThrow(try m.register(client("c")).get())
        XCTAssertEqual(m.all().map(\.id), ["b", "c"])
    }

    func testWaitForReturnsOnceEnoughClientsRegister() async {
        let m = InMemoryClientManager()
        _ = m.register(client("a"))
        async let ready = m.waitFor(count: 3, timeout: .seconds(600))
        _ = m.register(client("b"))
        _ = m.register(client("c"))
        let ok = await ready
        XCTAssertTrue(ok)
        let already = await m.waitFor(count: 3, timeout: .zero)
        XCTAssertTrue(already)
    }

    func testWaitForGivesUpAtItsTimeoutAndOnCancellation() async {
        let m = InMemoryClientManager()
        let timedOut = await m.waitFor(count: 1, timeout: .milliseconds(20))
        XCTAssertFalse(timedOut)
        let task = Task { await m.waitFor(count: 1, timeout: .seconds(600)) }
        task.cancel()
        let cancelled = await task.value
        XCTAssertFalse(cancelled)
    }

    func testSamplingIsDeterministicBySeedWhateverTheRegistrationOrder() {
        let ids = (0 ..< 20).map { "client-\($0)" }
        let forward = InMemoryClientManager(), backward = InMemoryClientManager()
        for id in ids { _ = forward.register(client(id)) }
        for id in ids.reversed() { _ = backward.register(client(id)) }
        let a = forward.sample(count: 5, seed: 42).map(\.id)
        XCTAssertEqual(a, backward.sample(count: 5, seed: 42).map(\.id))
        XCTAssertEqual(Set(a).count, 5, "no client twice")
        let others = (43 ..< 53).map { forward.sample(count: 5, seed: $0).map(\.id) }
        XCTAssertTrue(others.contains { $0 != a }, "other seeds pick other clients")
        XCTAssertEqual(forward.sample(count: 50, seed: 1).count, 20, "never more than connected")
        XCTAssertEqual(forward.sample(count: 0, seed: 1).count, 0)
    }

    /// `all()` keeps its sorted order between changes and follows every change of the registry:
    /// a registration, both unregisters and a replacement after the order was cached.
    func testTheSortedOrderFollowsEveryChange() {
        let m = InMemoryClientManager()
        for id in ["d", "b", "a"] { _ = m.register(client(id)) }
        XCTAssertEqual(m.all().map(\.id), ["a", "b", "d"])
        XCTAssertEqual(m.all().map(\.id), ["a", "b", "d"], "served again unchanged")
        _ = m.register(client("c"))
        XCTAssertEqual(m.all().map(\.id), ["a", "b", "c", "d"])
        m.unregister(id: "b")
        XCTAssertEqual(m.all().map(\.id), ["a", "c", "d"])
        let first = m.all()[0]
        let newA = client("a")
        XCTAssertTrue(m.replace(with: newA) === first)
        XCTAssertTrue(m.all()[0] === newA, "the replacement, not the cached old client")
        m.unregister(newA)
        XCTAssertEqual(m.all().map(\.id), ["c", "d"])
        m.unregister(id: "absent")
        XCTAssertEqual(m.all().map(\.id), ["c", "d"])
        // Sampling draws from the current registry: a client registered after a sample is drawable.
        _ = m.register(client("e"))
        XCTAssertEqual(Set(m.sample(count: 10, seed: 1).map(\.id)), ["c", "d", "e"])
    }
}

extension Result where Failure == RegistrationRefusal {
    var refusal: RegistrationRefusal? {
        if case .failure(let r) = self { return r }
        return nil
    }
}
