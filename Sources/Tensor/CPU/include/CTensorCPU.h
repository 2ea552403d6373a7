// CPU feature probe for the GEMM dispatcher (Sources/Tensor/KernelLevel.swift).
#ifndef CTENSORCPU_H
#define CTENSORCPU_H

/// 0 = baseline x86-64 (SSE2), 1 = AVX2 + FMA usable, 2 = AVX-512F/BW/DQ/VL usable.
/// "Usable" means the CPU reports the feature AND the OS saves the wider registers (XCR0).
int flwr_tensor_cpu_level(void);

#endif
