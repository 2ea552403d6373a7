#!/usr/bin/env python3
"""numpy/OpenBLAS float32 matmul GFLOPS on the shapes `flwr bench train` reports.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=2 python3 Benchmarks/numpy_gemm.py

(these machines set OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE, which pick an older, slower kernel: unset
them for this benchmark only). Prints {"bench":"gemm","impl":"numpy","m":..,"n":..,"k":..,"threads":..,"gflops":..}.
"""
import json
import os
import time

import numpy as np


def shapes():
    out = [(256, 256, 256), (1024, 1024, 1024)]
    for c, h, w in [(1, 28, 28), (3, 32, 32)]:
        cin = c
        for cout in (32, 64, 128, 256):
            out.append((cout, 32 * h * w, cin * 9))
            cin, h, w = cout, h // 2, w // 2
    return out


def main():
    threads = int(os.environ.get("OPENBLAS_NUM_THREADS", "0") or 0)
    rng = np.random.default_rng(1)
    for m, n, k in shapes():
        a = rng.standard_normal((m, k), dtype=np.float32)
        b = rng.standard_normal((k, n), dtype=np.float32)
        c = np.empty((m, n), dtype=np.float32)
        np.matmul(a, b, out=c)
        runs, start = 0, time.perf_counter()
        while time.perf_counter() - start < 1.0:
            np.matmul(a, b, out=c)
            runs += 1
        gflops = 2.0 * m * n * k * runs / (time.perf_counter() - start) / 1e9
        print(json.dumps({"bench": "gemm", "impl": "numpy", "m": m, "n": n, "k": k, "threads": threads,
                          "gflops": round(gflops, 1)}), flush=True)


if __name__ == "__main__":
    main()
