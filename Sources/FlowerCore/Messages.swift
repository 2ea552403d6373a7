/// A configuration or metric value (Flower's `Scalar`).
public enum Scalar: Sendable, Hashable, Codable, CustomStringConvertible {
    case double(Double)
    case int(Int64)
    case bool(Bool)
    case string(String)
    case bytes([UInt8])

    /// The value as a Double when numeric (ints and bools convert).
    public var doubleValue: Double? {
        switch self {
        case .double(let d): return d
        case .int(let i): return Double(i)
        case .bool(let b): return b ? 1 : 0
        default: return nil
        }
    }

    /// The value as an Int when it is an integer (or an integral double).
    public var intValue: Int? {
        switch self {
        case .int(let i): return Int(exactly: i)
        case .double(let d): return Int(exactly: d)
        case .bool(let b): return b ? 1 : 0
        default: return nil
        }
    }

    public var description: String {
        switch self {
        case .double(let d): return "\(d)"
        case .int(let i): return "\(i)"
        case .bool(let b): return "\(b)"
        case .string(let s): return s
        case .bytes(let b): return "<\(b.count) bytes>"
        }
    }
}

/// Per-round settings sent to clients (epochs, lr, batch_size, ...).
public typealias Config = [String: Scalar]
/// Values a client reports back (accuracy, loss, ...).
public typealias Metrics = [String: Scalar]

/// Outcome of a client-side operation.
public struct Status: Sendable, Equatable {
    public enum Code: Sendable, Equatable {
        case ok, fitFailed, evaluateFailed, getParametersFailed, badInstruction
    }
    public var code: Code
    public var message: String

    public init(code: Code = .ok, message: String = "") {
        self.code = code
        self.message = message
    }

    public static let ok = Status()
}

/// Instruction to train locally from `parameters`.
public struct FitIns: Sendable {
    /// Federated round, starting at 1.
    public var round: Int
    public var parameters: Parameters
    public var config: Config

    public init(round: Int, parameters: Parameters, config: Config = [:]) {
        self.round = round
        self.parameters = parameters
        self.config = config
    }
}

/// A client's training result.
public struct FitRes: Sendable {
    public var status: Status
    public var round: Int
    /// Updated parameters with the same layout as sent.
    public var parameters: Parameters
    /// Training examples used: FedAvg's weight.
    public var numExamples: Int
    public var metrics: Metrics

    public init(status: Status = .ok, round: Int, parameters: Parameters, numExamples: Int,
                metrics: Metrics = [:]) {
        self.status = status
        self.round = round
        self.parameters = parameters
        self.numExamples = numExamples
        self.metrics = metrics
    }
}

/// Instruction to evaluate `parameters` on local data.
public struct EvaluateIns: Sendable {
    public var round: Int
    public var parameters: Parameters
    public var config: Config

    public init(round: Int, parameters: Parameters, config: Config = [:]) {
        self.round = round
        self.parameters = parameters
        self.config = config
    }
}

/// A client's evaluation result.
public struct EvaluateRes: Sendable {
    public var status: Status
    public var round: Int
    public var loss: Double
    public var numExamples: Int
    public var metrics: Metrics

    public init(status: Status = .ok, round: Int, loss: Double, numExamples: Int, metrics: Metrics = [:]) {
        self.status = status
        self.round = round
        self.loss = loss
        self.numExamples = numExamples
        self.metrics = metrics
    }
}

/// Request for the client's current parameters (used to initialise a model from a client).
public struct GetParametersIns: Sendable {
    public var config: Config
    public init(config: Config = [:]) { self.config = config }
}

/// The client's parameters.
public struct ParametersRes: Sendable {
    public var status: Status
    public var parameters: Parameters
    public init(status: Status = .ok, parameters: Parameters) {
        self.status = status
        self.parameters = parameters
    }
}
