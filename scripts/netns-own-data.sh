# Sourced by scripts/netns-federation-test --own-data after the isolation checks: the federation of
# edge sites. Each client host reads its own folder (site-i/partition.npz + test.npz, a Dirichlet
# split written beforehand) with no partition flags; the server host is given no dataset and sees
# none; what crosses the wire is captured on the server's interface and must be parameters only.
# Uses the namespaces, rules and helpers of the script that sources it.
# The server proves clients with an auth token from a file (a non-loopback server refuses to run
# open); this run is left without TLS on purpose: step 5 reads the captured plaintext to show the
# wire carries parameters only (the partition run of netns-federation-test covers mutual TLS).

fmnist=${DATA_DIR:-/usr/share/datasets/fashion-mnist}
[ -f "$fmnist/train-images-idx3-ubyte.gz" ] || skip "--own-data writes the sites' data from Fashion-MNIST; none in $fmnist (scripts/bootstrap installs it)"
python3 -c "import numpy" 2>/dev/null || skip "--own-data needs numpy (pip install numpy)"
[ -d /usr/share/datasets ] || skip "/usr/share/datasets is missing: nothing to hide from the server"
sites="$work/sites"
state="$work/state"
mkdir -p "$sites" "$state"
(umask 077 && od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$work/token")

# 1. Each site's data, written before anything runs: partition i of a Dirichlet split (α 0.5).
"$flwr" partition --data-dir "$fmnist" --num-partitions "$CLIENTS" --alpha "${ALPHA:-0.5}" --seed 42 \
  --indices-out "$work/split.npz" >"$work/partition.log" 2>&1 || fail "flwr partition failed: $(tail -n 3 "$work/partition.log")"
python3 "$scripts/netns-site-data.py" "$fmnist" "$work/split.npz" "$sites" "$CLIENTS" "${MAX_TRAIN:-500}" "${MAX_TEST:-300}" \
  | tee "$work/sites.log" | sed 's/^/netns-federation-test: /'

# 2. The capture on the server host's interface, started before any connection.
ip netns exec "$server_ns" tcpdump -Z root -U -i eth0 -s 0 -B 131072 -n -w "$work/wire.pcap" "tcp port $PORT" 2>"$work/tcpdump.log" &
tcpdump_pid=$!
pids+=($tcpdump_pid)
for _ in $(seq 1 100); do grep -q "listening on" "$work/tcpdump.log" 2>/dev/null && break; sleep 0.1; done
grep -q "listening on" "$work/tcpdump.log" || fail "tcpdump did not start: $(cat "$work/tcpdump.log")"

# 3. The server, in its own mount namespace where the datasets folder and the sites are empty
#    tmpfs mounts, told --dataset none (federated evaluation on the clients' test sets).
say "starting flwr server ($ROUNDS rounds, no dataset) and $CLIENTS clients on their own data"
ip netns exec "$server_ns" unshare --mount --propagation private sh -c '
  mount -t tmpfs -o size=1m,mode=0755 flwr-no-data /usr/share/datasets &&
  mount -t tmpfs -o size=1m,mode=0755 flwr-no-data "$1" && shift && exec "$@"' sh "$sites" \
  "$flwr" server --port "$PORT" --rounds "$ROUNDS" --min-clients "$CLIENTS" --dataset none \
  --auth-token-file "$work/token" \
  --checkpoint-dir "$state/checkpoints" --metrics-out "$state/metrics.jsonl" --model-out "$state/model.npz" \
  >"$work/server.log" 2>&1 &
server_pid=$!
pids+=($server_pid)
# The pid becomes flwr's once ip, unshare and sh have exec'd into it.
for _ in $(seq 1 100); do [ "$(readlink "/proc/$server_pid/exe" 2>/dev/null)" = "$flwr" ] && break; sleep 0.1; done
[ "$(readlink "/proc/$server_pid/exe" 2>/dev/null)" = "$flwr" ] || fail "the server process did not start: $(tail -n 5 "$work/server.log")"

# What the server host holds: nothing in its datasets folder, nothing of the sites, no data flags.
seen=$(nsenter -t "$server_pid" -m -- sh -c 'ls -A /usr/share/datasets "$1"' sh "$sites" | grep -v ':$' | grep -v '^$' || true)
[ -z "$seen" ] || fail "the server host sees data files: $seen"
nsenter -t "$server_pid" -m -- test ! -e "$sites/site-0/partition.npz" || fail "the server host sees site-0's data"
[ -e "$sites/site-0/partition.npz" ] || fail "control: the sites' data is missing outside the server's view"
args=$(tr '\0' ' ' <"/proc/$server_pid/cmdline")
case "$args" in *--data-dir*) fail "the server was given a --data-dir: $args";; esac
case "$args" in *"--dataset none"*) ;; *) fail "the server was not told --dataset none: $args";; esac
say "ok: the server host holds no dataset (its /usr/share/datasets and the sites' folder are empty in its view; args: ${args% })"

# 4. The clients: each host reads its own folder, no partition flags; its hostname is its identity.
client_pids=()
for i in $(seq 0 $((CLIENTS - 1))); do
  ip netns exec "$(client_ns "$i")" unshare --uts sh -c 'hostname "$1" && shift && exec "$@"' sh "edge-site-$i" \
    "$flwr" client --server "$SERVER_IP:$PORT" --dataset npz --data-dir "$sites/site-$i" --threads 1 \
    --auth-token-file "$work/token" \
    >"$work/client$i.log" 2>&1 &
  client_pids+=($!)
  pids+=($!)
done
expect_closed "$c0" "$(client_ip 1)" $OTHER_PORT "during the federation a client cannot connect to another client"

deadline=$((SECONDS + TIMEOUT))
while kill -0 "$server_pid" 2>/dev/null; do
  [ $SECONDS -lt $deadline ] || fail "the federation did not finish within ${TIMEOUT}s (raise TIMEOUT)"
  # No file of the data is ever open in the server.
  if ls -l "/proc/$server_pid/fd" 2>/dev/null | grep -E "$sites|/usr/share/datasets" >/dev/null; then
    fail "the server opened a data file"
  fi
  sleep 1
done
server_status=0; wait "$server_pid" || server_status=$?
[ $server_status -eq 0 ] || fail "flwr server exited with $server_status"
for i in "${!client_pids[@]}"; do
  client_status=0
  for _ in $(seq 1 60); do kill -0 "${client_pids[$i]}" 2>/dev/null || break; sleep 1; done
  wait "${client_pids[$i]}" || client_status=$?
  [ $client_status -eq 0 ] || fail "flwr client $i exited with $client_status"
  # It trained on all of its folder: as many examples as the site's writer put there.
  expected=$(sed -n "s/^site-$i: \([0-9]*\) training images.*/\1/p" "$work/sites.log")
  grep -q "all of .*: $expected training examples" "$work/client$i.log" ||
    fail "client $i did not train on all $expected examples of its folder: $(grep -m1 'training examples' "$work/client$i.log")"
  grep -q "edge-site-$i" "$work/server.log" || fail "the server never saw client edge-site-$i by its hostname"
done
say "ok: each client trained on all of its own folder (${MAX_TRAIN:-500} images at most) with no partition flags"
# Every process has exited; let tcpdump write out what the kernel already handed it (-U writes each
# packet as it is captured; packets "received by filter" but not yet written when it stops are
# lost to the capture), then stop it.
sleep 2
kill -INT "$tcpdump_pid" 2>/dev/null || true
wait "$tcpdump_pid" 2>/dev/null || true
dropped=$(sed -n 's/^\([0-9]*\) packets dropped by kernel$/\1/p' "$work/tcpdump.log")
[ "${dropped:-0}" -eq 0 ] || fail "tcpdump lost $dropped packets (machine too busy?): the capture is incomplete; run again"
captured=$(sed -n 's/^\([0-9]*\) packets captured$/\1/p' "$work/tcpdump.log")
received=$(sed -n 's/^\([0-9]*\) packets received by filter$/\1/p' "$work/tcpdump.log")
[ "${captured:-0}" -eq "${received:-0}" ] ||
  fail "tcpdump wrote $captured of the $received packets it received: the capture is incomplete; run again"

[ -s "$state/metrics.jsonl" ] || fail "the server wrote no metrics to $state/metrics.jsonl"
lines=$(wc -l <"$state/metrics.jsonl")
[ "$lines" -ge "$ROUNDS" ] || fail "metrics.jsonl has $lines lines for $ROUNDS rounds"
[ -s "$state/model.npz" ] || fail "the server wrote no model to $state/model.npz"

# 5. The wire: parameters only.
site_dirs=()
for i in $(seq 0 $((CLIENTS - 1))); do site_dirs+=("$sites/site-$i"); done
if ! python3 "$scripts/netns-wire-check.py" "$work/wire.pcap" "$SERVER_IP" "$PORT" "$state/model.npz" "$ROUNDS" \
     "$CLIENTS" "${site_dirs[@]}" 2>&1 | sed 's/^/netns-federation-test: /'; then
  fail "the wire carried more than parameters (above)"
fi
say "federation completed: $ROUNDS rounds, $CLIENTS clients on their own data, metrics:"
cat "$state/metrics.jsonl"
say "PASS"
