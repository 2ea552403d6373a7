#!/bin/bash
# Virtual clients at scale (BENCHMARKS.md, "flwr simulate at cross-device scale"): one run each,
# sequential, peak RSS from /usr/bin/time -v, the compute floor from the run's own report.
# Usage: Benchmarks/simulate_scale.sh [FLWR_BINARY] [OUT_DIR]
set -u
B=${1:-.build/release/flwr}
OUT=${2:-/tmp/flwr-simulate-scale}
mkdir -p "$OUT"
date -u; grep -o 'avx512[a-z]*' /proc/cpuinfo | sort -u | tr '\n' ' '; echo; nproc; uptime
run() {
    name=$1; shift
    echo "== $name: flwr simulate $*"; uptime
    /usr/bin/time -v "$B" simulate --out "$OUT/out-$name" "$@" > "$OUT/$name.log" 2>&1
    grep -E "virtual clients ready|clients on|^ +[0-9]+ +0\.|wall time|rounds .* floor|Maximum resident|Elapsed" "$OUT/$name.log"
}
common=(--alpha 0 --max-test-examples 1000)
run v100k --transport virtual --clients 100000 --clients-per-round 100 --rounds 5 "${common[@]}"
run v1k --transport virtual --clients 1000 --clients-per-round 100 --rounds 5 "${common[@]}"
run v10k --transport virtual --clients 10000 --clients-per-round 100 --rounds 3 "${common[@]}"
run v1k50 --transport virtual --clients 1000 --clients-per-round 50 --rounds 3 "${common[@]}"
run t1k50 --transport tcp --clients 1000 --clients-per-round 50 --rounds 3 "${common[@]}"
date -u
