// Flower's legacy messages (proto/flower-compat/transport.proto) as Swift values. The codec
// (CompatCodec.swift) maps them to and from protobuf bytes with libprotobuf-c; the server proxy
// and the client runner map them to FlowerCore's vocabulary.
import FlowerCore

/// Flower's `Parameters`: one `.npy` blob per tensor, in the model's order, without names.
public struct FlowerTensors: Sendable, Equatable {
    /// Each tensor as `np.save` bytes.
    public var tensors: [[UInt8]]
    /// Flower's tag for the encoding: "numpy.ndarray".
    public var tensorType: String

    /// The tag Flower's `ndarrays_to_parameters` writes.
    public static let numpyType = "numpy.ndarray"

    public init(tensors: [[UInt8]] = [], tensorType: String = FlowerTensors.numpyType) {
        self.tensors = tensors
        self.tensorType = tensorType
    }
}

/// Flower's `Status` (`Code`: OK = 0, GET_PROPERTIES/GET_PARAMETERS/FIT/EVALUATE_NOT_IMPLEMENTED = 1...4).
public struct FlowerStatus: Sendable, Equatable {
    public var code: Int32
    public var message: String
    public init(code: Int32 = 0, message: String = "") {
        self.code = code
        self.message = message
    }
    public static let ok = FlowerStatus()
    public var isOK: Bool { code == 0 }
}

/// `ServerMessage`: what Flower's server sends down the Join stream.
public enum FlowerServerMessage: Sendable, Equatable {
    /// Disconnect; come back after `seconds` (0: shut down).
    case reconnect(seconds: Int64)
    case getProperties(config: Config)
    case getParameters(config: Config)
    case fit(parameters: FlowerTensors, config: Config)
    case evaluate(parameters: FlowerTensors, config: Config)

    /// The oneof's name, for logs and errors.
    public var kind: String {
        switch self {
        case .reconnect: return "ReconnectIns"
        case .getProperties: return "GetPropertiesIns"
        case .getParameters: return "GetParametersIns"
        case .fit: return "FitIns"
        case .evaluate: return "EvaluateIns"
        }
    }
}

/// `ClientMessage`: what a Flower client sends up the Join stream.
public enum FlowerClientMessage: Sendable, Equatable {
    /// The answer to ReconnectIns (`reason`: Flower's `Reason`, ACK = 4 when coming back later).
    case disconnect(reason: Int32)
    case getPropertiesRes(status: FlowerStatus, properties: Metrics)
    case getParametersRes(status: FlowerStatus, parameters: FlowerTensors)
    case fitRes(status: FlowerStatus, parameters: FlowerTensors, numExamples: Int64, metrics: Metrics)
    case evaluateRes(status: FlowerStatus, loss: Float, numExamples: Int64, metrics: Metrics)

    /// The oneof's name, for logs and errors.
    public var kind: String {
        switch self {
        case .disconnect: return "DisconnectRes"
        case .getPropertiesRes: return "GetPropertiesRes"
        case .getParametersRes: return "GetParametersRes"
        case .fitRes: return "FitRes"
        case .evaluateRes: return "EvaluateRes"
        }
    }
}

/// Flower's `Reason` values.
public enum FlowerReason {
    public static let unknown: Int32 = 0
    /// What Flower's client answers every ReconnectIns with (message_handler.py `_reconnect`).
    public static let reconnect: Int32 = 1
    public static let ack: Int32 = 4
}
