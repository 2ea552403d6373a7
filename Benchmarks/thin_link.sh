#!/usr/bin/env bash
# A federation over an emulated thin edge link: `flwr server` and three `flwr client`s, each in
# its own network namespace, mutual TLS 1.3, 2 rounds of the reference CNN (cnn4) on Fashion-MNIST,
# each client behind its own link of 2 Mbit/s each way, 300 ms round trip and 5% packet loss each
# way. Measures the wall time of the federation and the bytes it moved, for one server
# configuration per run (e.g. float32, --update-compression int8, topk:0.01, --broadcast-compression fp16).
#
#   Benchmarks/thin_link.sh FLWR OUTDIR NAME [flwr server flags...]
#   e.g. Benchmarks/thin_link.sh .build/release/flwr /tmp/thin int8 --update-compression int8
#
# How the link is emulated (this kernel has no netem qdisc):
#   client ns eth0 ──veth── [link ns: a_i | delay line | b_i] ──veth── bridge ns br0 ──veth── server ns eth0
#   - rate: a tbf qdisc (rate 2mbit, burst 10kb, latency 150ms) on the client's eth0 (upload) and on
#     the link namespace's a_i (download, towards the client); a frame tbf refuses is dropped.
#   - delay: Benchmarks/thin_link_delay.py bridges a_i <-> b_i in user space (AF_PACKET) and holds
#     every frame DELAY_MS (150) before writing it out the other side, both ways: 300 ms round trip
#     on every packet, as TCP sees it (offloads off on every veth, so frames are MTU-sized).
#   - loss: iptables `-m statistic --mode random --probability 0.05 -j DROP` in the INPUT chain of
#     each client (packets from the server) and of the server (packets from the clients): 5% of the
#     packets each way never arrive, after they used the link.
#   LINK=clean runs the same federation with the clients on the bridge directly (no rate, delay
#   or loss; offloads left on), as the reference.
#
# Environment: LINK (thin|clean, default thin), ROUNDS (2), RATE (2mbit), DELAY_MS (150),
# LOSS (0.05), MAX_TRAIN (500 training examples per client), MAX_TEST (1000), TIMEOUT (1800 s),
# DATA_DIR (/usr/share/datasets/fashion-mnist). Needs root, iproute2, ethtool, iptables, python3.
# Appends one line to OUTDIR/summary.txt and leaves the logs and metrics in OUTDIR/NAME/.
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: $0 FLWR OUTDIR NAME [flwr server flags...]" >&2; exit 2; }
flwr=$(realpath "$1"); out=$2; name=$3; shift 3
[ -x "$flwr" ] || { echo "no flwr binary at $flwr" >&2; exit 1; }
here=$(cd "$(dirname "$0")" && pwd)
LINK=${LINK:-thin}; ROUNDS=${ROUNDS:-2}; RATE=${RATE:-2mbit}; DELAY_MS=${DELAY_MS:-150}; LOSS=${LOSS:-0.05}
MAX_TRAIN=${MAX_TRAIN:-500}; MAX_TEST=${MAX_TEST:-1000}; TIMEOUT=${TIMEOUT:-1800}
DATA_DIR=${DATA_DIR:-/usr/share/datasets/fashion-mnist}
[ "$(id -u)" -eq 0 ] || { echo "needs root (network namespaces)" >&2; exit 77; }
for tool in ip tc iptables ethtool python3 bc; do
  command -v $tool >/dev/null || { echo "needs $tool" >&2; exit 77; }
done
case $LINK in thin|clean) ;; *) echo "LINK must be thin or clean" >&2; exit 2;; esac

CLIENTS=3; PORT=8080; SUBNET=10.214.0; SERVER_IP=$SUBNET.1
client_ip() { echo "$SUBNET.$((11 + $1))"; }
dir="$out/$name"
rm -rf "$dir"; mkdir -p "$dir/state"
tag="tl$$"; br="$tag-br"; srv="$tag-srv"; lnk="$tag-lnk"
cns() { echo "$tag-c$1"; }
namespaces=(); pids=()
cleanup() {
  local status=$?
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  for ns in "${namespaces[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
  exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM
newns() { ip netns add "$1"; namespaces+=("$1"); ip -n "$1" link set lo up; }
# Software checksums and MTU-sized frames: a frame the delay line copies must carry its checksum,
# and tbf and the loss rule must see packets, not 64 KB offload aggregates.
nooffload() { ip netns exec "$1" ethtool -K "$2" tx off rx off tso off gso off gro off >/dev/null; }

newns "$br"; ip -n "$br" link add br0 type bridge; ip -n "$br" link set br0 up
newns "$srv"
ip -n "$br" link add vs type veth peer name eth0 netns "$srv"
ip -n "$br" link set vs master br0 up
ip -n "$srv" addr add "$SERVER_IP/24" dev eth0; ip -n "$srv" link set eth0 up
[ $LINK = clean ] || newns "$lnk"
for i in $(seq 0 $((CLIENTS - 1))); do
  c=$(cns "$i"); newns "$c"
  if [ $LINK = clean ]; then
    ip -n "$br" link add "v$i" type veth peer name eth0 netns "$c"
  else
    ip -n "$lnk" link add "a$i" type veth peer name eth0 netns "$c"
    ip -n "$lnk" link add "b$i" type veth peer name "v$i" netns "$br"
    for dev in "a$i" "b$i"; do ip -n "$lnk" link set "$dev" promisc on up; nooffload "$lnk" "$dev"; done
  fi
  ip -n "$br" link set "v$i" master br0 up
  ip -n "$c" addr add "$(client_ip "$i")/24" dev eth0; ip -n "$c" link set eth0 up
done
delay_pid=""
if [ $LINK = thin ]; then
  nooffload "$srv" eth0; nooffload "$br" vs
  pairs=()
  for i in $(seq 0 $((CLIENTS - 1))); do
    c=$(cns "$i")
    nooffload "$c" eth0; nooffload "$br" "v$i"
    tc -n "$c" qdisc add dev eth0 root tbf rate "$RATE" burst 10kb latency 150ms
    tc -n "$lnk" qdisc add dev "a$i" root tbf rate "$RATE" burst 10kb latency 150ms
    ip netns exec "$c" iptables -A INPUT -s "$SERVER_IP" -m statistic --mode random --probability "$LOSS" -j DROP
    ip netns exec "$srv" iptables -A INPUT -s "$(client_ip "$i")" -m statistic --mode random --probability "$LOSS" -j DROP
    pairs+=("a$i:b$i")
  done
  # The delay line runs at a higher priority than the federation so that a loaded machine delays
  # frames as little as possible beyond DELAY_MS (its lateness is reported in delay.log).
  ip netns exec "$lnk" nice -n -5 python3 -u "$here/thin_link_delay.py" "$DELAY_MS" "${pairs[@]}" >"$dir/delay.log" 2>&1 &
  delay_pid=$!; pids+=($delay_pid)
  for _ in $(seq 1 100); do grep -q ready "$dir/delay.log" 2>/dev/null && break; sleep 0.1; done
  grep -q ready "$dir/delay.log" || { cat "$dir/delay.log" >&2; echo "the delay line did not start" >&2; exit 1; }
fi
# The link, measured before the federation: 20 TCP connects from client 0 to a listener in the
# server's namespace, each timed from SYN to SYN-ACK (one round trip; a lost SYN costs a 1 s
# retransmission, so the median is reported).
ip netns exec "$srv" python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 9000)); s.listen(64)
while True: s.accept()[0].close()' "$SERVER_IP" >/dev/null 2>&1 &
pids+=($!)
sleep 0.5
rtt=$(ip netns exec "$(cns 0)" python3 -c '
import socket, sys, time
t = []
for _ in range(20):
    c = socket.socket(); start = time.monotonic(); c.connect((sys.argv[1], 9000)); t.append(time.monotonic() - start); c.close()
t.sort(); print(f"{1000 * t[len(t) // 2]:.0f}")' "$SERVER_IP")

"$flwr" certs --out "$dir/certs" --server-name "$SERVER_IP" --clients "$CLIENTS" >"$dir/certs.log" 2>&1
rx0=$(ip netns exec "$srv" cat /sys/class/net/eth0/statistics/rx_bytes)
tx0=$(ip netns exec "$srv" cat /sys/class/net/eth0/statistics/tx_bytes)
start=$(date +%s.%N)
ip netns exec "$srv" "$flwr" server --port "$PORT" --rounds "$ROUNDS" --min-clients "$CLIENTS" \
  --tls-cert "$dir/certs/server.pem" --tls-key "$dir/certs/server.key" --tls-client-ca "$dir/certs/ca.pem" \
  --metrics-out "$dir/state/metrics.jsonl" --max-test-examples "$MAX_TEST" --data-dir "$DATA_DIR" \
  --threads 1 "$@" >"$dir/server.log" 2>&1 &
server_pid=$!; pids+=($server_pid)
client_pids=()
for i in $(seq 0 $((CLIENTS - 1))); do
  ip netns exec "$(cns "$i")" "$flwr" client --server "$SERVER_IP:$PORT" --partition "$i" --num-partitions "$CLIENTS" \
    --tls-ca "$dir/certs/ca.pem" --tls-cert "$dir/certs/client-$i.pem" --tls-key "$dir/certs/client-$i.key" \
    --max-train-examples "$MAX_TRAIN" --threads 1 --data-dir "$DATA_DIR" >"$dir/client$i.log" 2>&1 &
  client_pids+=($!); pids+=($!)
done
deadline=$((SECONDS + TIMEOUT))
while kill -0 "$server_pid" 2>/dev/null; do
  [ $SECONDS -lt $deadline ] || { echo "the federation did not finish within ${TIMEOUT}s" >&2; tail "$dir/server.log" >&2; exit 1; }
  sleep 0.2
done
end=$(date +%s.%N)
status=0; wait "$server_pid" || status=$?
[ $status -eq 0 ] || { tail -n 20 "$dir/server.log" >&2; echo "flwr server exited with $status" >&2; exit 1; }
for pid in "${client_pids[@]}"; do wait "$pid" || { echo "a client failed (see $dir/client*.log)" >&2; exit 1; }; done
grep -q "connections secured: TLS 1.3 with mutual TLS" "$dir/server.log" || { echo "the server did not run mutual TLS" >&2; exit 1; }
rx1=$(ip netns exec "$srv" cat /sys/class/net/eth0/statistics/rx_bytes)
tx1=$(ip netns exec "$srv" cat /sys/class/net/eth0/statistics/tx_bytes)
drops=""
if [ $LINK = thin ]; then
  lost_up=$(ip netns exec "$srv" iptables -L INPUT -v -x -n | awk '/statistic/ {s += $1} END {print s + 0}')
  lost_down=0
  for i in $(seq 0 $((CLIENTS - 1))); do
    lost_down=$((lost_down + $(ip netns exec "$(cns "$i")" iptables -L INPUT -v -x -n | awk '/statistic/ {s += $1} END {print s + 0}')))
  done
  kill "$delay_pid"; wait "$delay_pid" 2>/dev/null || true
  drops="packets lost (iptables) up $lost_up, down $lost_down; $(tail -n 1 "$dir/delay.log")"
fi
python3 - "$dir/state/metrics.jsonl" "$name" "$LINK" "$(echo "$end - $start" | bc)" "$((rx1 - rx0))" "$((tx1 - tx0))" \
  "$(cut -d' ' -f1-3 /proc/loadavg)" "${rtt:-?}" "$drops" "$*" >>"$out/summary.txt" <<'PY'
import json, sys
path, name, link, wall, rx, tx, load, rtt, drops, flags = sys.argv[1:11]
h = [json.loads(l) for l in open(path)]
up = sum(r.get("bytes_in", 0) for r in h); down = sum(r.get("bytes_out", 0) for r in h)
acc = h[-1].get("accuracy")
print(f"{name} [{link}; {flags or 'float32'}] wall {float(wall):.1f} s, load {load}, TCP connect rtt median {rtt} ms: "
      f"frames up {up:,} B down {down:,} B; server eth0 rx {int(rx):,} B tx {int(tx):,} B; "
      f"accuracy {acc:.4f} after {len(h)} rounds" + (f"; {drops}" if drops else ""))
PY
tail -n 1 "$out/summary.txt"
