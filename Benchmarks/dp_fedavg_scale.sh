#!/bin/bash
# User-level DP-FedAvg at cross-device scale: 10,000 virtual clients on real Fashion-MNIST
# (IID, ~6 images each), Poisson sampling q = 0.1 (1,000 clients per round on average),
# adaptive clipping at the median update norm, central evaluation on the 10,000 test images.
# usage: Benchmarks/dp_fedavg_scale.sh FLWR OUTDIR NAME ROUNDS MODEL Z [extra simulate flags...]
# e.g.   Benchmarks/dp_fedavg_scale.sh .build/release/flwr /tmp/dp z1 100 mlp 1.0 \
#            --epochs 5 --lr 0.05 --dp-clip 1.0 --dp-target-quantile 0.5
# Writes OUTDIR/NAME/history.jsonl (accuracy and ε per round) and appends the wall time and
# accuracy at rounds 10/25/50/100 to OUTDIR/summary.txt.
set -euo pipefail
flwr=$1; out=$2; name=$3; rounds=$4; model=$5; z=$6; shift 6
mkdir -p "$out"
start=$(date +%s.%N)
"$flwr" simulate --transport virtual --clients 10000 --clients-per-round 1000 --rounds "$rounds" \
    --alpha 0 --model "$model" --dp-noise-multiplier "$z" --dp-delta 1e-5 --max-test-examples 10000 \
    --seed 42 --out "$out/$name" "$@" > "$out/$name.log" 2>&1
end=$(date +%s.%N)
python3 - "$out/$name/history.jsonl" "$name" "$(echo "$end - $start" | bc)" "$(cut -d' ' -f1-3 /proc/loadavg)" \
    >> "$out/summary.txt" <<'PY'
import json, sys
path, name, wall, load = sys.argv[1:5]
h = [json.loads(l) for l in open(path)]
acc = " ".join(f"r{r}:{h[r-1]['accuracy']:.3f}" for r in (10, 25, 50, 100) if r <= len(h))
print(f"{name} wall {float(wall):.1f} s, load {load}: {acc}, eps {h[-1]['epsilon']:.2f} after {len(h)} rounds")
PY
tail -1 "$out/summary.txt"
