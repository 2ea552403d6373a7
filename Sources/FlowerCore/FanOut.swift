/// Sends one instruction to each client in parallel and collects answers until all answered or
/// the deadline passed. Each call runs in its own unstructured task, so a client that ignores
/// cancellation cannot hold the round: at the deadline its task is cancelled and abandoned, and
/// the client becomes a `.timeout` failure. Answers are handed to `onAnswer` one at a time, in
/// arrival order, on the caller's task (so a streaming aggregator needs no lock).
enum FanOut {
    private enum Event<R: Sendable>: Sendable {
        case answer(Int, Result<R, any Error>)
        case deadline
    }

    /// Runs `call` for every `(client, ins)`; returns the failures (thrown errors, timeouts and
    /// answers `onAnswer` refused), in the order they were observed.
    static func run<I: Sendable, R: Sendable>(
        _ calls: [(client: any ClientProxy, ins: I)],
        timeout: Duration,
        call: @escaping @Sendable (any ClientProxy, I, Duration) async throws -> R,
        onAnswer: (any ClientProxy, R) throws(ClientFailure) -> Void
    ) async -> [ClientFailure] {
        guard !calls.isEmpty else { return [] }
        let (stream, continuation) = AsyncStream<Event<R>>.makeStream()
        var tasks: [Task<Void, Never>] = []
        tasks.reserveCapacity(calls.count)
        for (index, c) in calls.enumerated() {
            let client = c.client, ins = c.ins
            tasks.append(Task {
                let result: Result<R, any Error>
                do { result = .success(try await call(client, ins, timeout)) } catch { result = .failure(error) }
                continuation.yield(.answer(index, result))
            })
        }
        let timer = Task {
            do { try await Task.sleep(for: timeout) } catch { return }
            continuation.yield(.deadline)
        }
        var pending = Set(calls.indices)
        var failures: [ClientFailure] = []
        loop: for await event in stream {
            switch event {
            case .answer(let i, let result):
                guard pending.remove(i) != nil else { continue }
                let client = calls[i].client
                switch result {
                case .success(let answer):
                    do { try onAnswer(client, answer) } catch { failures.append(error) }
                case .failure(let error):
                    if let f = error as? ClientFailure {
                        failures.append(f)
                    } else {
                        failures.append(ClientFailure(clientID: client.id, kind: .error, reason: "\(error)"))
                    }
                }
                if pending.isEmpty { break loop }
            case .deadline:
                break loop
            }
        }
        continuation.finish()
        timer.cancel()
        for i in pending.sorted() {
            tasks[i].cancel()
            failures.append(ClientFailure(clientID: calls[i].client.id, kind: .timeout,
                                          reason: "no answer within the round deadline of \(timeout)"))
        }
        return failures
    }
}
