#!/usr/bin/env bash
# The container's cost: the federation ContainerFederationReleaseTests runs in containers (2 rounds,
# 3 clients, 300 training images each, 500 test images, mutual TLS, one thread per client), run
# here as plain processes on loopback with the same flags the rendered ConfigMaps give, timed the
# same way: from starting the server, through its /readyz answering, to the last client's exit.
#   Benchmarks/container_overhead.sh [PATH/TO/flwr] [RUNS]     (default .build/flwr-static, 3 runs)
# Prints one line per run; compare with the test's line "container: server start-to-ready … s;
# federation (2 rounds, 3 clients) … s" (swift test -c release --filter ContainerFederationReleaseTests).
set -euo pipefail
flwr=$(realpath "${1:-.build/flwr-static}")
runs=${2:-3}
work=$(mktemp -d /tmp/flwr-overhead.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
"$flwr" certs --out "$work/certs" --server-name 127.0.0.1 --clients 3 >/dev/null
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/token"
for run in $(seq 1 "$runs"); do
  state="$work/state-$run"; mkdir -p "$state"
  port=$((20000 + RANDOM % 20000)); ops=$((port + 1))
  t0=$(date +%s.%N)
  "$flwr" server --port "$port" --http-port "$ops" --host 127.0.0.1 --rounds 2 --min-clients 3 \
    --checkpoint-dir "$state/checkpoints" --resume --metrics-out "$state/metrics.jsonl" --model-out "$state/model.npz" \
    --tls-cert "$work/certs/server.pem" --tls-key "$work/certs/server.key" --tls-client-ca "$work/certs/ca.pem" \
    --auth-token-file "$work/token" --max-test-examples 500 >"$state/server.log" 2>&1 &
  server=$!
  until curl -fs "http://127.0.0.1:$ops/readyz" >/dev/null; do sleep 0.05; done
  ready=$(date +%s.%N)
  clients=()
  for i in 0 1 2; do
    JOB_COMPLETION_INDEX=$i "$flwr" client --server "127.0.0.1:$port" --num-partitions 3 \
      --tls-ca "$work/certs/ca.pem" --tls-cert "$work/certs/client-$i.pem" --tls-key "$work/certs/client-$i.key" \
      --auth-token-file "$work/token" --max-train-examples 300 --threads 1 --http-port 0 >"$state/client$i.log" 2>&1 &
    clients+=($!)
  done
  for c in "${clients[@]}"; do wait "$c"; done
  t1=$(date +%s.%N)
  wait "$server"
  echo "processes: server start-to-ready $(echo "$ready - $t0" | bc) s; federation (2 rounds, 3 clients) $(echo "$t1 - $t0" | bc) s"
done
