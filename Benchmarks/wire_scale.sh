#!/usr/bin/env bash
# FlowerWire at scale on loopback (BENCHMARKS.md, "Wire at scale"):
#   1. a `flwr server` waiting for N+1 clients; `flwr bench clients` opens N handshaken idle
#      clients; the server's RSS and thread count are read from /proc;
#   2. a real `flwr client` (partition 0 of 100, 300 examples) joins: one round with all N+1
#      clients sampled (each bench client returns the model + 1e-3; with DECLINE=1 it answers
#      FIT_FAILED at once, so only the real client's model is aggregated: for N = 10,000, where
#      10,000 echoed models would not fit the kernel's TCP buffers while the bench holds
#      them back); round time from the server's history, server peak RSS (VmHWM).
# Usage: Benchmarks/wire_scale.sh [N] [SERVER_AND_CLIENT_BINARY] [BENCH_BINARY]   (default 10000, .build/release/flwr x2)
set -euo pipefail
N=${1:-10000}
B=${2:-.build/release/flwr}
T=${3:-.build/release/flwr}  # the binary that provides `bench clients` (lets B be an older server)
PORT=${PORT:-$((20000 + RANDOM % 30000))}
dir=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$dir"' EXIT
ulimit -n "$(ulimit -Hn)"
"$B" server --host 127.0.0.1 --port "$PORT" --rounds 1 --min-clients $((N + 1)) --fraction-fit 1 --min-fit-clients 1 \
  --max-test-examples 300 --wait-timeout 600 --round-timeout 600 --metrics-out "$dir/history.jsonl" \
  >"$dir/server.log" 2>&1 &
spid=$!
until grep -q "waiting for" "$dir/server.log"; do sleep 0.2; done
"$T" bench clients --server "127.0.0.1:$PORT" --clients "$N" ${DECLINE:+--decline} >"$dir/bench.log" 2>&1 &
bpid=$!
until grep -q '"phase":"connected"' "$dir/bench.log"; do sleep 0.2; kill -0 $bpid; done
head -1 "$dir/bench.log"
sleep 2
rss=$(awk '/^VmRSS/ {print $2}' /proc/$spid/status); thr=$(awk '/^Threads/ {print $2}' /proc/$spid/status)
echo "{\"bench\":\"wire_scale\",\"phase\":\"idle\",\"idle_clients\":$N,\"server_rss_mb\":$((rss / 1024)),\"server_threads\":$thr}"
"$B" client --server "127.0.0.1:$PORT" --partition 0 --num-partitions 100 --max-train-examples 300 \
  --threads 1 >"$dir/client.log" 2>&1 &
cpid=$!
peak=0
while kill -0 $spid 2>/dev/null; do
  h=$(awk '/^VmHWM/ {print $2}' /proc/$spid/status 2>/dev/null || echo 0); [ "${h:-0}" -gt "$peak" ] && peak=$h
  sleep 0.2
done
wait $spid; s=$?; wait $cpid; c=$?; wait $bpid || true
tail -1 "$dir/bench.log"
secs=$(python3 -c "import json,sys; print(json.loads(open(sys.argv[1]).readline())['seconds'])" "$dir/history.jsonl")
fits=$(python3 -c "import json,sys; print(json.loads(open(sys.argv[1]).readline())['fit_clients'])" "$dir/history.jsonl")
echo "{\"bench\":\"wire_scale\",\"phase\":\"round\",\"fit_clients\":$fits,\"round_seconds\":$secs,\"server_peak_rss_mb\":$((peak / 1024)),\"server_exit\":$s,\"client_exit\":$c}"
