#!/bin/bash
# Sync FedAvg vs asynchronous FedBuff over the wire, on the real clock (BENCHMARKS.md, "FedBuff over
# the wire"): one `flwr server` and N `flwr client` processes on this machine, S of them emulating
# slow sites (`flwr client --slowdown F`: each fit answered F x its training time after the
# instruction). The same number of client results is aggregated in both runs: sync R rounds of all
# N clients, FedBuff (--concurrency N, --buffer-size K) R*N/K updates, evaluated every N/K updates
# so both evaluate the same number of times. Prints, per run, the wall time (sum of history.jsonl's
# per-round seconds, from the first round's start) to reach the target accuracy.
# Usage: Benchmarks/fedbuff_wall.sh [FLWR_BINARY] [OUT_DIR] [TARGET] [ROUNDS]
set -u
B=$(realpath "${1:-.build/release/flwr}")
OUT=${2:-/tmp/flwr-fedbuff-wall}
TARGET=${3:-0.75}
R=${4:-12}
N=6          # clients
SLOW=2       # the last SLOW clients are slow
F=5          # their slowdown
K=3          # FedBuff buffer size
SEED=${SEED:-42}   # also the split and the initial model
mkdir -p "$OUT"
date -u; grep -o 'avx512[a-z]*' /proc/cpuinfo | sort -u | tr '\n' ' '; echo; nproc; uptime
model=(--model mlp --hidden 256)
data=(--alpha 0.5 --seed "$SEED" --num-partitions "$N" --max-train-examples 2000 --threads 1 --epochs 2)

run() {  # run NAME SERVER_ARGS...
    local name=$1; shift
    local dir="$OUT/$name"; rm -rf "$dir"; mkdir -p "$dir"
    "$B" server --host 127.0.0.1 --port 0 --min-clients "$N" --seed "$SEED" "${model[@]}" --max-test-examples 2000 \
        --threads 1 --epochs 2 --metrics-out "$dir/history.jsonl" "$@" > "$dir/server.log" 2>&1 &
    local server=$!
    local port=""
    for _ in $(seq 1 600); do
        port=$(grep -o 'listening on [^ ]*:[0-9]*;' "$dir/server.log" | head -1 | sed 's/.*:\([0-9]*\);/\1/')
        [ -n "$port" ] && break
        sleep 0.2
    done
    local clients=()
    for i in $(seq 0 $((N - 1))); do
        local slow=()
        [ "$i" -ge $((N - SLOW)) ] && slow=(--slowdown "$F")
        "$B" client --server "127.0.0.1:$port" --partition "$i" "${data[@]}" "${model[@]}" "${slow[@]}" \
            > "$dir/client$i.log" 2>&1 &
        clients+=($!)
    done
    wait "$server"; echo "$name: server exit $?"
    # A client still training when the last update is applied (FedBuff) cannot be told to finish
    # until it answers, and then finds the server gone: stop the ones left after a grace period.
    sleep 5
    for c in "${clients[@]}"; do kill "$c" 2> /dev/null; wait "$c" 2> /dev/null; done
    uptime
}

run sync --rounds "$R"
run fedbuff --mode async --concurrency "$N" --buffer-size "$K" --rounds $((R * N / K)) --eval-every $((N / K))

python3 - "$TARGET" "$OUT" <<'PY'
import json, sys
target, out = float(sys.argv[1]), sys.argv[2]
res = {}
for name in ["sync", "fedbuff"]:
    rows = [json.loads(l) for l in open(f"{out}/{name}/history.jsonl")]
    t, hit = 0.0, None
    for r in rows:
        t += r["seconds"]
        if hit is None and r.get("accuracy") is not None and r["accuracy"] >= target:
            hit = (r["round"], t)
    fits = sum(r["fit_clients"] for r in rows)
    best = max(r["accuracy"] for r in rows if r.get("accuracy") is not None)
    res[name] = hit
    print(f"{name}: {len(rows)} rounds/updates, {fits} results aggregated, total {t:.1f} s, best accuracy {best:.4f}, "
          + (f"reaches {target} at round/update {hit[0]} after {hit[1]:.1f} s" if hit else f"never reaches {target}"))
if res["sync"] and res["fedbuff"]:
    print(f"time to {target}: sync / fedbuff = {res['sync'][1] / res['fedbuff'][1]:.2f}x")
PY
