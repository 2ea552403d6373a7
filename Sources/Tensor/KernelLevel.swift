// KernelLevel: which compiled GEMM variant the running CPU can execute (run-time dispatch).
import CTensorCPU

#if canImport(Glibc)
import Glibc
#endif

/// The instruction-set level of a GEMM variant. The binary contains all three; only levels
/// the CPU supports are ever called, so it never dies with an illegal instruction.
public enum KernelLevel: Int, Sendable, CaseIterable, Comparable, CustomStringConvertible {
    /// SSE2 only: every x86-64 CPU.
    case baseline = 0
    /// AVX2 with FMA (Haswell and later, Zen).
    case avx2 = 1
    /// AVX-512 F/BW/DQ/VL/CD (Skylake-X and later, Zen 4/5).
    case avx512 = 2

    /// What the CPU and OS support, from cpuid and xgetbv.
    public static let detected: KernelLevel = KernelLevel(rawValue: Int(flwr_tensor_cpu_level())) ?? .baseline

    /// Every level this machine can run, lowest first.
    public static var supported: [KernelLevel] { allCases.filter { $0 <= detected } }

    /// The level new workspaces use: `detected`, lowered by FLWR_KERNELS=baseline|avx2 if set
    /// (a request above `detected` is clamped, never obeyed).
    public static func preferred() throws -> KernelLevel {
        guard let raw = getenv("FLWR_KERNELS") else { return detected }
        let name = String(cString: raw)
        guard let level = allCases.first(where: { $0.description == name }) else {
            throw TensorError.unknownKernelLevel(name)
        }
        return min(level, detected)
    }

    /// Lower-case name: baseline, avx2, avx512.
    public var description: String {
        switch self {
        case .baseline: return "baseline"
        case .avx2: return "avx2"
        case .avx512: return "avx512"
        }
    }

    /// Ordered by capability.
    public static func < (lhs: KernelLevel, rhs: KernelLevel) -> Bool { lhs.rawValue < rhs.rawValue }
}
