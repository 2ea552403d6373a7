// TensorError: the one error type of the Tensor module.

/// Errors from Tensor kernels and buffers; each description names the bad value and the fix.
public enum TensorError: Error, CustomStringConvertible, Equatable {
    /// A shape argument is not usable (e.g. a zero or negative size).
    case invalidShape(String)
    /// An unknown kernel level was requested through FLWR_KERNELS.
    case unknownKernelLevel(String)

    /// Human-readable description with a remedy.
    public var description: String {
        switch self {
        case .invalidShape(let what):
            return "invalid tensor shape: \(what); pass positive sizes that match the buffers"
        case .unknownKernelLevel(let name):
            return "FLWR_KERNELS=\(name) is not a kernel level; use baseline, avx2 or avx512 (or unset it)"
        }
    }
}
