#!/usr/bin/env bash
# flwr simulate with and without --secagg at 10 and 100 clients (Fashion-MNIST, the README's cnn4,
# 2 rounds, α = 0.5, seed 42, 2,000 test images), every client on its own TCP connection (the
# wire): round time, bytes per client, the per-phase log. SECAGG_BENCH_N="10 100 1000" picks the sizes.
# Usage: Benchmarks/secagg.sh [flwr binary] [output dir]
set -euo pipefail
flwr=${1:-.build/release/flwr}
out=${2:-/tmp/flwr-secagg-bench}
mkdir -p "$out"
for n in ${SECAGG_BENCH_N:-10 100}; do
  for mode in plain secagg; do
    extra=()
    [ "$mode" = secagg ] && extra=(--secagg)
    dir="$out/n$n-$mode"
    rm -rf "$dir"
    /usr/bin/time -v "$flwr" simulate --clients "$n" --rounds 2 --alpha 0.5 --seed 42 --max-test-examples 2000 \
      --transport tcp --out "$dir" "${extra[@]}" > "$dir.log" 2>&1 || { echo "failed: $dir.log"; exit 1; }
    echo "== n=$n $mode"
    cat "$dir/history.jsonl"
    grep -o 'secure aggregation phases: .*' "$dir.log" || true
    grep -E 'Elapsed \(wall|Maximum resident' "$dir.log"
  done
done
