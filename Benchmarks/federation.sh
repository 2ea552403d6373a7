#!/usr/bin/env bash
# The federation benchmark of BENCHMARKS.md: Flower's reference task (Fashion-MNIST, 10 clients,
# Dirichlet α = 0.5 seed 42, FedAvg over all 10, 5 rounds × 1 epoch, SGD lr 0.01 momentum 0.9
# batch 32, central evaluation on the 10,000 test images) run two ways, with wall time, peak RSS
# and accuracy per round:
#
#   Benchmarks/federation.sh simulate     # `flwr simulate`: server + 10 clients in one process
#   Benchmarks/federation.sh processes    # `flwr server` + 10 `flwr client` processes on loopback
#
# Needs the release binary (`swift build -c release --product flwr`) and the dataset
# (`scripts/bootstrap`). Writes its files under ${OUT:-/tmp/flwr-federation-bench}.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-simulate}
bin=${FLWR_BIN:-.build/release/flwr}
out=${OUT:-/tmp/flwr-federation-bench}/$mode
rounds=${ROUNDS:-5}
clients=10
rm -rf "$out"; mkdir -p "$out"
[ -x "$bin" ] || { echo "no $bin: run swift build -c release --product flwr" >&2; exit 1; }

report() {  # history.jsonl → one line per round, then the totals
    python3 - "$1" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
for r in rows:
    print(f"round {r['round']}: accuracy {r['accuracy']:.4f} loss {r['loss']:.4f} "
          f"{r['seconds']:.1f} s, {(r['bytes_in'] + r['bytes_out']) / 1e6:.1f} MB on the wire")
EOF
}

case $mode in
simulate)
    /usr/bin/time -f '%e %M' -o "$out/time" "$bin" simulate --clients $clients --rounds "$rounds" \
        --alpha 0.5 --seed 42 --out "$out" > "$out/stdout" 2> "$out/stderr"
    report "$out/history.jsonl"
    read -r wall rss < "$out/time"
    echo "flwr simulate: wall ${wall} s, peak RSS $((rss / 1024)) MB (server and all $clients clients, one process)"
    ;;
processes)
    port=${PORT:-18080}
    start=$(date +%s.%N)
    /usr/bin/time -f '%e %M' -o "$out/server.time" "$bin" server --rounds "$rounds" --port "$port" \
        --host 127.0.0.1 --min-clients $clients --dataset fashion-mnist --seed 42 \
        --metrics-out "$out/history.jsonl" --model-out "$out/model.npz" 2> "$out/server.log" &
    server=$!
    pids=()
    for i in $(seq 0 $((clients - 1))); do
        /usr/bin/time -f '%e %M' -o "$out/client-$i.time" "$bin" client --server 127.0.0.1:"$port" \
            --partition "$i" --num-partitions $clients --alpha 0.5 --seed 42 --threads 1 \
            2> "$out/client-$i.log" &
        pids+=($!)
    done
    wait "$server"
    for p in "${pids[@]}"; do wait "$p"; done
    wall=$(python3 -c "import time; print(f'{time.time() - $start:.1f}')")
    report "$out/history.jsonl"
    read -r _ server_rss < "$out/server.time"
    total=$server_rss; max_client=0
    for i in $(seq 0 $((clients - 1))); do
        read -r _ rss < "$out/client-$i.time"
        total=$((total + rss)); [ "$rss" -gt "$max_client" ] && max_client=$rss
    done
    echo "flwr server + $clients flwr client processes: wall ${wall} s; peak RSS server $((server_rss / 1024)) MB," \
         "largest client $((max_client / 1024)) MB, sum of all $(( total / 1024 )) MB"
    ;;
*)
    echo "usage: $0 simulate|processes" >&2; exit 2 ;;
esac
