#!/bin/bash
# Sync FedAvg vs asynchronous FedBuff on the virtual clock (BENCHMARKS.md, "Stragglers on a virtual
# clock"): 100 clients, Fashion-MNIST α 0.5, 10 sampled (sync) or 10 concurrent (FedBuff K = 5, 10),
# client speeds lognormal σ = 1, the same client compute (3,000 fits) for every run; per seed and
# availability, then the virtual time to reach the target accuracy.
# Usage: Benchmarks/fedbuff.sh [FLWR_BINARY] [OUT_DIR] [TARGET]
set -u
B=${1:-.build/release/flwr}
OUT=${2:-/tmp/flwr-fedbuff}
TARGET=${3:-0.80}
mkdir -p "$OUT"
date -u; grep -o 'avx512[a-z]*' /proc/cpuinfo | sort -u | tr '\n' ' '; echo; nproc; uptime
for avail in 1 0.7; do
    for seed in 42 43 44; do
        dir="$OUT/avail$avail-seed$seed"; mkdir -p "$dir"
        common=(--transport virtual --clients 100 --alpha 0.5 --model mlp --hidden 64 --max-train-examples 600
                --client-speed lognormal:1 --client-availability "$avail" --seed "$seed" --log-level warning)
        "$B" simulate "${common[@]}" --clients-per-round 10 --rounds 300 --out "$dir/sync" > "$dir/sync.txt" 2>&1
        "$B" simulate "${common[@]}" --mode async --concurrency 10 --buffer-size 5 --rounds 600 --out "$dir/k5" > "$dir/k5.txt" 2>&1
        "$B" simulate "${common[@]}" --mode async --concurrency 10 --buffer-size 10 --rounds 300 --out "$dir/k10" > "$dir/k10.txt" 2>&1
        uptime
    done
done
python3 "$(dirname "$0")/fedbuff_time_to_target.py" "$TARGET" "$OUT"/avail*-seed*
