#!/bin/bash
# Does zlib still pay on compressed updates? (BENCHMARKS.md, "Does zlib still pay"): the README's task
# (cnn4, 10 TCP clients, alpha 0.5) for ROUNDS rounds per update encoding, with zlib negotiated (the
# default) and with --no-zlib; the upload per round is history.jsonl's bytes_in (FitRes frames as
# they crossed the wire, headers included), so both columns are measured, not computed.
# Usage: Benchmarks/zlib_updates.sh [FLWR_BINARY] [OUT_DIR] [ROUNDS] [MAX_TRAIN_EXAMPLES]
set -u
B=${1:-.build/release/flwr}
OUT=${2:-/tmp/flwr-zlib}
ROUNDS=${3:-3}
MAX=${4:-2000}
mkdir -p "$OUT"
date -u; grep -o 'avx512[a-z]*' /proc/cpuinfo | sort -u | tr '\n' ' '; echo; nproc; uptime
for mode in none fp16 int8 int4 topk:0.01; do
    for z in zlib no-zlib; do
        dir="$OUT/${mode/:/-}-$z"; rm -rf "$dir"
        "$B" simulate --transport tcp --clients 10 --rounds "$ROUNDS" --alpha 0.5 --seed 42 --max-train-examples "$MAX" \
            --update-compression "$mode" --"$z" --out "$dir" --log-level warning > "$dir.txt" 2>&1 || echo "$mode $z failed"
    done
    uptime
done
python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
def rows(d): return [json.loads(l) for l in open(f"{out}/{d}/history.jsonl")]
base = None
print("| encoding | upload per round with zlib (bytes) | without zlib (bytes) | with / without | without vs float32 | with vs float32 | accuracy last round, with / without |")
print("|---|---|---|---|---|---|---|")
for mode in ["none", "fp16", "int8", "int4", "topk:0.01"]:
    z, n = rows(mode.replace(":", "-") + "-zlib"), rows(mode.replace(":", "-") + "-no-zlib")
    zi = [r["bytes_in"] for r in z]; ni = [r["bytes_in"] for r in n]
    zm, nm = sum(zi) / len(zi), sum(ni) / len(ni)
    if base is None: base = nm
    rng = lambda v: f"{min(v):,}" if min(v) == max(v) else f"{min(v):,} – {max(v):,}"
    print(f"| {mode} | {rng(zi)} | {rng(ni)} | {zm / nm:.3f} | {nm / base:.4f} | {zm / base:.4f} | {z[-1]['accuracy']:.4f} / {n[-1]['accuracy']:.4f} |")
PY
