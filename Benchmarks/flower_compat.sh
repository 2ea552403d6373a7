#!/usr/bin/env bash
# Flower's own legacy server against `flwr server --flower-port`, with the same 10 unmodified
# Flower clients (scripts/flower_client.py: PyTorch cnn4, Flower 1.42's start_client), one after
# the other in one invocation: wall time of the whole run (server start to exit) and the
# server's peak RSS (/usr/bin/time), with the per-round federated accuracy each server reports.
#
#   Benchmarks/flower_compat.sh            # the README's task: ROUNDS=5, ALPHA=0.5, all 60,000 images
#   ROUNDS=3 ALPHA=iid EXAMPLES=1000 Benchmarks/flower_compat.sh   # a quick one
#
# The task is the README's (Fashion-MNIST, 10 clients on the Dirichlet α = 0.5 split of seed 42
# that `flwr partition --indices-out` writes, FedAvg over all 10, 1 epoch per round, SGD lr 0.01
# momentum 0.9 batch 32) with one difference, the same on both sides: evaluation is federated (each
# client scores 500 test images), because Flower's start_server has no central evaluation unless
# one writes an evaluate_fn. ALPHA=iid gives a seeded IID split instead, EXAMPLES caps each
# client's training images. Both servers take the initial model from a client.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${FLWR_BIN:-.build/release/flwr}
out=${OUT:-/tmp/flwr-flower-compat-bench}
rounds=${ROUNDS:-5}
examples=${EXAMPLES:-}
alpha=${ALPHA:-0.5}
clients=10
config='{"lr": 0.01, "momentum": 0.9, "batch_size": 32, "epochs": 1}'
rm -rf "$out"; mkdir -p "$out"
[ -x "$bin" ] || { echo "no $bin: run swift build -c release --product flwr" >&2; exit 1; }
python3 -c "import flwr, torch" || { echo "needs Flower and PyTorch: see FlowerCompatReleaseTests" >&2; exit 1; }
split=()
if [ "$alpha" != iid ]; then
    "$bin" partition --num-partitions $clients --alpha "$alpha" --seed 42 --indices-out "$out/split.npz" > "$out/split.txt"
    split=(--indices "$out/split.npz")
fi
cap=()
[ -n "$examples" ] && cap=(--max-train-examples "$examples")

start_clients() {  # $1: address, $2: log prefix
    for i in $(seq 0 $((clients - 1))); do
        python3 scripts/flower_client.py --server "$1" --partition "$i" --num-partitions $clients \
            "${split[@]}" "${cap[@]}" > "$out/$2-client$i.log" 2>&1 &
    done
}

echo "== Flower $(python3 -c 'import flwr; print(flwr.__version__)') start_server (grpc-bidi, FedAvg)"
/usr/bin/time -f '%e %M' -o "$out/flower.time" python3 scripts/flower_server.py --address 127.0.0.1:19301 \
    --rounds "$rounds" --clients $clients --fit-config "$config" --history-out "$out/flower-history.json" \
    > "$out/flower-server.log" 2>&1 &
server=$!
sleep 2
start_clients 127.0.0.1:19301 flower
wait $server
wait
python3 - "$out/flower-history.json" <<'PY'
import json, sys
h = json.load(open(sys.argv[1]))
print("accuracy per round:", [round(a, 4) for _, a in h["metrics_distributed"]["accuracy"]])
PY
read -r wall rss < "$out/flower.time"
echo "Flower server: wall ${wall} s, peak RSS $((rss / 1024)) MB"

echo "== flwr server --flower-port"
/usr/bin/time -f '%e %M' -o "$out/flwr.time" "$bin" server --host 127.0.0.1 --port 19302 --flower-port 19303 \
    --rounds "$rounds" --min-clients $clients --dataset none --lr 0.01 --momentum 0.9 --batch-size 32 --epochs 1 \
    --metrics-out "$out/flwr-history.jsonl" --wait-timeout 600 > "$out/flwr-server.log" 2>&1 &
server=$!
sleep 1
start_clients 127.0.0.1:19303 flwr
wait $server
wait
python3 - "$out/flwr-history.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print("accuracy per round:", [round(r["accuracy"], 4) for r in rows])
PY
read -r wall rss < "$out/flwr.time"
echo "flwr server: wall ${wall} s, peak RSS $((rss / 1024)) MB"
