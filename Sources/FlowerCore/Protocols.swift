/// The user's side of federated learning: what a client does with each instruction.
///
/// FlowerWire's client transport calls these as instructions arrive; tests call them directly.
public protocol Client: Sendable {
    /// The client's current parameters.
    func getParameters(_ ins: GetParametersIns) async throws -> ParametersRes
    /// Trains on local data starting from `ins.parameters`.
    func fit(_ ins: FitIns) async throws -> FitRes
    /// Evaluates `ins.parameters` on local data.
    func evaluate(_ ins: EvaluateIns) async throws -> EvaluateRes
}

/// The server's handle on one connected client, whatever carries the bytes.
///
/// FlowerWire implements it per TCP connection; tests implement it in memory. Every call either
/// returns the client's answer or throws (disconnect, timeout, malformed answer): the round loop
/// turns a throw into a failure.
public protocol ClientProxy: AnyObject, Sendable {
    /// Unique identity of the client (from its Hello).
    var id: String { get }
    /// The data partition the client declared, if any.
    var partition: Int? { get }

    func getParameters(_ ins: GetParametersIns, timeout: Duration) async throws -> ParametersRes
    func fit(_ ins: FitIns, timeout: Duration) async throws -> FitRes
    func evaluate(_ ins: EvaluateIns, timeout: Duration) async throws -> EvaluateRes
    /// Tells the client training is over (it then exits successfully) and closes the connection.
    func finish(roundsCompleted: Int, reason: String) async
    /// Tells the client training is over, saying whether the run failed (a failed run makes the
    /// client exit non-zero); transports without that notion fall back to `finish(roundsCompleted:reason:)`.
    func finish(roundsCompleted: Int, reason: String, failed: Bool) async
    /// Asks the client to disconnect and come back after `seconds`.
    func reconnect(seconds: Int, reason: String) async
    /// One step of a secure-aggregation (SecAgg+) fit round (`SecAggRoundDriver`). The default
    /// throws `SecAggParticipationError.unsupported`: a transport that cannot carry the messages
    /// (or a client whose binary predates them) is refused with that reason.
    func secureAggregation(_ ins: SecAggInstruction, timeout: Duration) async throws -> SecAggAnswer
    /// Whether `finish` has anything to deliver. False for an in-process client that holds no
    /// connection or task: the server then skips it at the end instead of spending a task on it
    /// (100,000 virtual clients would cost 100,000 tasks).
    var needsFinish: Bool { get }
}

extension ClientProxy {
    /// Default: a client behind a transport is told that training is over.
    public var needsFinish: Bool { true }

    /// Default: the success/failure flag is not carried.
    public func finish(roundsCompleted: Int, reason: String, failed: Bool) async {
        await finish(roundsCompleted: roundsCompleted, reason: reason)
    }
}

/// Why a client could not join.
public enum RegistrationRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    /// Another connected client already uses this identity.
    case duplicateIdentity(String)
    /// The server already holds its maximum number of clients.
    case serverFull(max: Int)

    public var description: String {
        switch self {
        case .duplicateIdentity(let id):
            return "a client with identity \(id) is already connected; give each client a unique --partition or --client-id"
        case .serverFull(let max):
            return "the server already has its maximum of \(max) clients; raise --max-clients or start fewer clients"
        }
    }
}

/// The registry of connected clients that transports register into and the round loop samples.
///
/// FlowerWire calls `register` after a successful handshake and `unregister` when the
/// connection ends; FlowerCore's server loop waits on it and samples from it.
public protocol ClientManager: AnyObject, Sendable {
    /// Adds a connected client, or says why it cannot join.
    func register(_ client: any ClientProxy) -> Result<Void, RegistrationRefusal>
    /// Removes the client with this identity (no-op when absent).
    func unregister(id: String)
    /// Removes exactly this client object, if it is the one registered under its identity (a
    /// connection that ends never removes a newer session that took over its identity).
    func unregister(_ client: any ClientProxy)
    /// Registers `client` in place of the one holding its identity (a reconnecting client whose
    /// identity was proven); returns the displaced client, if any.
    func replace(with client: any ClientProxy) -> (any ClientProxy)?
    /// Number of clients connected now.
    var count: Int { get }
}
