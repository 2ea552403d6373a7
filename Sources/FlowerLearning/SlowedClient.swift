// `flwr client --slowdown F`: a site F times slower at training than the machine it runs on, for
// measuring stragglers on real processes and a real clock (FedBuff against synchronous rounds).
// The fit runs as usual, then the answer is held back for (F − 1) × the fit's measured duration,
// so the server receives it F × the fit time after asking, as it would from a slower device.
// Holding back sleeps instead of computing: the cores stay free for the other clients.
import FlowerCore

/// A client that answers every fit `factor` times later than its own training took.
public struct SlowedClient: Client {
    /// The client doing the work.
    public let inner: any Client
    /// F ≥ 1: a fit's answer arrives F × its measured duration after the instruction.
    public let factor: Double
    private let now: @Sendable () -> ContinuousClock.Instant
    private let sleep: @Sendable (Duration) async throws -> Void

    /// Wraps `inner`; `factor` must be at least 1 (`SlowedClient.problem`).
    public init(_ inner: any Client, factor: Double) {
        self.init(inner, factor: factor, now: { ContinuousClock.now }, sleep: { try await Task.sleep(for: $0) })
    }

    /// Wraps `inner` with its own clock and sleep (tests drive both).
    public init(_ inner: any Client, factor: Double, now: @escaping @Sendable () -> ContinuousClock.Instant,
                sleep: @escaping @Sendable (Duration) async throws -> Void) {
        precondition(Self.problem(factor: factor) == nil, Self.problem(factor: factor) ?? "")
        self.inner = inner
        self.factor = factor
        self.now = now
        self.sleep = sleep
    }

    /// Why `factor` cannot be a slowdown, or nil.
    public static func problem(factor: Double) -> String? {
        factor >= 1 && factor.isFinite
            ? nil
            : "--slowdown must be a finite factor of at least 1 (1: this machine's speed, 10: ten times slower), got \(factor)"
    }

    /// How long a fit that took `elapsed` is held back: (F − 1) × elapsed.
    public static func delay(afterFit elapsed: Duration, factor: Double) -> Duration {
        elapsed * (factor - 1)
    }

    public func getParameters(_ ins: GetParametersIns) async throws -> ParametersRes {
        try await inner.getParameters(ins)
    }

    /// Trains, then waits (F − 1) × the training time (cancellation, e.g. SIGTERM, ends the wait
    /// with an error, as it would end the training).
    public func fit(_ ins: FitIns) async throws -> FitRes {
        let start = now()
        let res = try await inner.fit(ins)
        let wait = Self.delay(afterFit: start.duration(to: now()), factor: factor)
        if wait > .zero { try await sleep(wait) }
        return res
    }

    /// Evaluation is not slowed: the factor models a site's training compute.
    public func evaluate(_ ins: EvaluateIns) async throws -> EvaluateRes {
        try await inner.evaluate(ins)
    }
}
