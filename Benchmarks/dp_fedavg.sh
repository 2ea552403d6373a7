#!/bin/bash
# DP table of BENCHMARKS.md ("User-level DP: DP-FedAvg"): flwr simulate on real Fashion-MNIST with
# DP-FedAvg (adaptive clipping) at z = 0.3, 0.5, 1.0 and without DP, for 10 and 100 clients;
# ε after each round at δ = 1e-5 and accuracy, from each run's history.jsonl.
#   swift build -c release --product flwr
#   Benchmarks/dp_fedavg.sh [OUTDIR]            (ROUNDS, MAX_TRAIN, MAX_TEST override the sizes;
#                                                SETTINGS="100:0.2" runs only those clients:q pairs)
# A run the server stops (every client diverged) is reported as such, and the others still run.
# Runs under `nice`; the machine load is printed with each run.
set -eu
FLWR=${FLWR:-.build/release/flwr}
OUT=${1:-/tmp/flwr-dp-bench}
ROUNDS=${ROUNDS:-5}
MAX_TRAIN=${MAX_TRAIN:-600}
MAX_TEST=${MAX_TEST:-2000}
mkdir -p "$OUT"
# clients:fraction-fit (10 clients all sampled; 100 clients q = 0.2, 20 expected per round)
for setting in ${SETTINGS:-10:1.0 100:0.2}; do
  n=${setting%%:*}; q=${setting##*:}
  for z in none 0.3 0.5 1.0; do
    dir="$OUT/n$n-z$z"
    dp=()
    if [ "$z" != none ]; then
      dp=(--dp-noise-multiplier "$z" --dp-target-quantile 0.5 --dp-clip 1.0 --dp-clip-lr 0.5 --dp-delta 1e-5)
    fi
    echo "### $n clients, q $q, z $z: $(date -u +%H:%M:%S) $(uptime | sed 's/.*load/load/')"
    nice "$FLWR" simulate --clients "$n" --rounds "$ROUNDS" --fraction-fit "$q" --alpha 0.5 --seed 42 \
      --max-train-examples "$MAX_TRAIN" --max-test-examples "$MAX_TEST" --out "$dir" "${dp[@]}" \
      > "$dir.log" 2>&1 || echo "stopped: $(tail -1 "$dir.log")"
    grep -E "DP-FedAvg round|wall time" "$dir.log" | sed 's/.*\] //'
  done
done
python3 - "$OUT" "$ROUNDS" <<'PY'
import json, sys, os
out, rounds = sys.argv[1], int(sys.argv[2])
for n, q in ((10, 1.0), (100, 0.2)):
    print(f"\n{n} clients, q = {q}, δ = 1e-5: ε / accuracy after each round")
    zs = ["none", "0.3", "0.5", "1.0"]
    print("| round | " + " | ".join(("no DP" if z == "none" else f"z = {z}") for z in zs) + " |")
    print("|---|" + "---|" * len(zs))
    hist = {}
    for z in zs:
        with open(os.path.join(out, f"n{n}-z{z}", "history.jsonl")) as f:
            hist[z] = [json.loads(l) for l in f]
    for r in range(rounds):
        cells = []
        for z in zs:
            h = hist[z]
            if r >= len(h): cells.append("stopped" if r == len(h) else "–"); continue
            acc = h[r]["accuracy"]
            eps = h[r].get("epsilon")
            cells.append(f"{acc:.3f}" if eps is None else f"ε {eps:.2f} / {acc:.3f}")
        print(f"| {r + 1} | " + " | ".join(cells) + " |")
PY
