// The Swift side of proto/flower.proto's envelopes: what travels in each frame.
import FlowerCore

/// First message on every connection (server → client).
public struct Challenge: Sendable, Equatable {
    /// Highest protocol version the server speaks.
    public var protocolVersion: UInt32
    /// 32 random bytes the client's proof covers.
    public var nonce: [UInt8]
    /// Whether the server requires an authentication proof.
    public var authRequired: Bool
    /// Largest frame payload the server accepts, in bytes.
    public var maxFrameBytes: Int

    /// A challenge from its fields.
    public init(protocolVersion: UInt32, nonce: [UInt8], authRequired: Bool, maxFrameBytes: Int) {
        self.protocolVersion = protocolVersion
        self.nonce = nonce
        self.authRequired = authRequired
        self.maxFrameBytes = maxFrameBytes
    }
}

/// The client's answer to a `Challenge`.
public struct Hello: Sendable, Equatable {
    /// Protocol version the client speaks.
    public var protocolVersion: UInt32
    /// Identity, unique among connected clients.
    public var clientID: String
    /// Data partition the client trains on, if any.
    public var partition: Int?
    /// Whether the client can read zlib-compressed frames.
    public var acceptsZlib: Bool
    /// HMAC-SHA256(token, nonce || utf8(clientID)); empty without a token.
    public var authProof: [UInt8]
    /// Free-form description for logs.
    public var agent: String
    /// Largest frame payload the client accepts (0 = unstated).
    public var maxFrameBytes: Int
    /// The model the client trains, "<name>|<layout digest>" ("" = unstated).
    public var model: String

    /// A hello from its fields.
    public init(protocolVersion: UInt32, clientID: String, partition: Int?, acceptsZlib: Bool,
                authProof: [UInt8], agent: String, maxFrameBytes: Int, model: String = "") {
        self.model = model
        self.protocolVersion = protocolVersion
        self.clientID = clientID
        self.partition = partition
        self.acceptsZlib = acceptsZlib
        self.authProof = authProof
        self.agent = agent
        self.maxFrameBytes = maxFrameBytes
    }
}

/// The server accepted the client.
public struct Welcome: Sendable, Equatable {
    /// Protocol version of the session.
    public var protocolVersion: UInt32
    /// Server-assigned session identifier for logs.
    public var sessionID: String
    /// Whether zlib compression may be used (when it pays) in both directions.
    public var zlib: Bool

    /// The server's model, "<name>|<layout digest>" ("" = unstated).
    public var model: String = ""
    /// How the client must encode its fit updates (`--update-compression`).
    public var updateCompression: UpdateCompression = .none

    /// A welcome from its fields.
    public init(protocolVersion: UInt32, sessionID: String, zlib: Bool, model: String = "",
                updateCompression: UpdateCompression = .none) {
        self.model = model
        self.updateCompression = updateCompression
        self.protocolVersion = protocolVersion
        self.sessionID = sessionID
        self.zlib = zlib
    }
}

/// The server refused the client and closes the connection.
public struct Refusal: Sendable, Equatable {
    /// Why.
    public var reason: RefusalReason
    /// What was wrong and what to do.
    public var message: String

    /// A refusal from its fields.
    public init(reason: RefusalReason, message: String) {
        self.reason = reason
        self.message = message
    }
}

/// Everything a server sends (proto `ServerMessage`).
public enum ServerMessage: Sendable {
    case challenge(Challenge)
    case welcome(Welcome)
    case refusal(Refusal)
    case getParameters(GetParametersIns)
    case fit(FitIns)
    case evaluate(EvaluateIns)
    case reconnect(seconds: Int, reason: String)
    /// Training is over; `failed` when the server stopped with an error.
    case finish(roundsCompleted: Int, reason: String, failed: Bool = false)
    /// Secure aggregation (protocol version 2, proto/secagg.md): starts a round for the client.
    case secAggSetup(SecAggSetup)
    /// Secure aggregation: the client's neighbours' public keys.
    case secAggNeighbourKeys(SecAggNeighbourKeys)
    /// Secure aggregation: the shares addressed to the client; not answered (the `FitIns` that
    /// follows is answered with `secAggMaskedInput`).
    case secAggForwardedShares(SecAggForwardedShares)
    /// Secure aggregation: whose shares to reveal.
    case secAggUnmaskRequest(SecAggUnmaskRequest)

    /// The message kind, for logs and errors.
    public var kind: String {
        switch self {
        case .challenge: return "Challenge"
        case .welcome: return "Welcome"
        case .refusal: return "Refusal"
        case .getParameters: return "GetParametersIns"
        case .fit: return "FitIns"
        case .evaluate: return "EvaluateIns"
        case .reconnect: return "Reconnect"
        case .finish: return "Finish"
        case .secAggSetup: return "SecAggSetup"
        case .secAggNeighbourKeys: return "SecAggNeighbourKeys"
        case .secAggForwardedShares: return "SecAggForwardedShares"
        case .secAggUnmaskRequest: return "SecAggUnmaskRequest"
        }
    }
}

/// Everything a client sends (proto `ClientMessage`).
public enum ClientMessage: Sendable {
    case hello(Hello)
    case parametersRes(ParametersRes)
    case fitRes(FitRes)
    /// A successful fit result whose weights travel as a compressed update (the `FitRes`'s
    /// `parameters` are empty; the server adds the update onto the FitIns weights).
    case compressedFitRes(FitRes, update: CompressedUpdate)
    case evaluateRes(EvaluateRes)
    case goodbye(reason: String)
    /// Secure aggregation: the client's two public keys.
    case secAggPublicKeys(SecAggPublicKeys)
    /// Secure aggregation: one encrypted share pair per neighbour.
    case secAggShareKeys(SecAggShareKeys)
    /// Secure aggregation: the masked update, and the fit metrics in clear.
    case secAggMaskedInput(SecAggMaskedInput, metrics: Metrics)
    /// Secure aggregation: the shares the server asked for.
    case secAggUnmaskResponse(SecAggUnmaskResponse)

    /// The message kind, for logs and errors.
    public var kind: String {
        switch self {
        case .hello: return "Hello"
        case .parametersRes: return "ParametersRes"
        case .fitRes, .compressedFitRes: return "FitRes"
        case .evaluateRes: return "EvaluateRes"
        case .goodbye: return "Goodbye"
        case .secAggPublicKeys: return "SecAggPublicKeys"
        case .secAggShareKeys: return "SecAggShareKeys"
        case .secAggMaskedInput: return "SecAggMaskedInput"
        case .secAggUnmaskResponse: return "SecAggUnmaskResponse"
        }
    }
}
