#!/usr/bin/env bash
# The strategy and Byzantine tables of BENCHMARKS.md ("Strategies and attacks"), on real
# Fashion-MNIST with `flwr simulate` (SGD lr 0.01 momentum 0.9 batch 32, 1 local epoch, central
# evaluation on the 10,000 test images, seed 42):
#
#   Benchmarks/strategies.sh byzantine    # 10 clients, α 0.5, 5 rounds; 2 malicious clients with
#                                         # sign-flip (scale 10) and gaussian (scale 10) against
#                                         # fedavg, fedmedian, fedtrimmedavg, krum, multikrum,
#                                         # bulyan; plus honest fedavg (all 10 clients, and
#                                         # the 8 honest ones only)
#   Benchmarks/strategies.sh strategies   # 10 clients, α 0.1, 10 rounds: fedavg, fedavgm, fedprox,
#                                         # fedadam, fedyogi, fedadagrad
#   Benchmarks/strategies.sh memory       # peak RSS of one round at 100 clients, α 0.5:
#                                         # fedavg (streaming) vs the order-statistic strategies
#
# Each run goes through `nice` (the build machine is shared). SLICE adds flags to every run, e.g.
# SLICE="--max-train-examples 600 --max-test-examples 2000" for a slice of the data on a loaded
# machine (BENCHMARKS.md says which runs used one). ONLY="name1 name2" runs just those runs of the
# mode (to spread a mode over several shells). Needs the release binary
# (`swift build -c release --product flwr`) and the dataset (`scripts/bootstrap`). SEED (default
# 42) seeds the partition, the initial model and the training order, to repeat a table over
# several seeds. Writes under
# ${OUT:-/tmp/flwr-strategies-bench}/MODE/NAME/ and prints one summary line per run (also
# appended to MODE/summary.txt): accuracy per round, wall time, peak RSS.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-byzantine}
bin=${FLWR_BIN:-.build/release/flwr}
root=${OUT:-/tmp/flwr-strategies-bench}/$mode
mkdir -p "$root"
[ -x "$bin" ] || { echo "no $bin: run swift build -c release --product flwr" >&2; exit 1; }

run() {  # NAME ARGS...: one simulate run, then its summary line
    local name=$1; shift
    if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $name "* ]]; then return 0; fi
    local out=$root/$name
    rm -rf "$out"; mkdir -p "$out"
    local status=ok
    # shellcheck disable=SC2086  # SLICE is a list of flags
    nice /usr/bin/time -f '%e %M' -o "$out/time" "$bin" simulate --seed "${SEED:-42}" --out "$out" "$@" ${SLICE:-} \
        > "$out/stdout" 2> "$out/stderr" || status="stopped: $(grep -v '^Command exited' "$out/stderr" | tail -1)"
    python3 - "$name" "$out" "$status" <<'PY' | tee -a "$root/summary.txt"
import json, sys
name, out, status = sys.argv[1], sys.argv[2], sys.argv[3]
rows = [json.loads(l) for l in open(f"{out}/history.jsonl") if l.strip()]
wall, rss = open(f"{out}/time").read().split()[-2:]
acc = " ".join("null" if r["accuracy"] is None else f"{r['accuracy']:.4f}" for r in rows)
mal = sorted({m for r in rows for m in r.get("malicious", [])})
fail = sum(r["failures"] for r in rows)
print(f"{name}: accuracy per round {acc} | wall {float(wall):.1f} s | peak RSS {int(rss) // 1024} MB"
      f" | failures {fail} | malicious {','.join(mal) or '-'}" + ("" if status == "ok" else f" | {status}"))
PY
}

case $mode in
byzantine)
    common=(--clients 10 --rounds 5 --alpha 0.5)
    run honest-fedavg "${common[@]}" --strategy fedavg
    # What a perfect defence can reach: FedAvg over the 8 honest clients only (the 2 malicious
    # ones send NaN, which the server's update checks refuse, so their data never counts).
    run honest8-fedavg "${common[@]}" --malicious 2 --attack nan --strategy fedavg
    for attack in sign-flip gaussian; do
        bad=(--malicious 2 --attack "$attack" --attack-scale 10)
        run "$attack-fedavg" "${common[@]}" "${bad[@]}" --strategy fedavg
        run "$attack-fedmedian" "${common[@]}" "${bad[@]}" --strategy fedmedian
        run "$attack-fedtrimmedavg" "${common[@]}" "${bad[@]}" --strategy fedtrimmedavg --beta 0.2
        run "$attack-krum" "${common[@]}" "${bad[@]}" --strategy krum --num-malicious-clients 2
        # Multi-Krum keeps m = n − f = 8 updates, Blanchard et al.'s choice (§4): all the honest
        # ones when the scores single out the attackers.
        run "$attack-multikrum" "${common[@]}" "${bad[@]}" --strategy multikrum --num-malicious-clients 2 --num-clients-to-keep 8
        # Bulyan needs n ≥ 4f + 3: with 10 clients f = 1 is the largest it accepts.
        run "$attack-bulyan" "${common[@]}" "${bad[@]}" --strategy bulyan --num-malicious-clients 1
    done
    ;;
strategies)
    common=(--clients 10 --rounds 10 --alpha 0.1)
    run fedavg "${common[@]}" --strategy fedavg
    run fedavgm "${common[@]}" --strategy fedavgm --server-learning-rate 0.1 --server-momentum 0.9
    run fedprox "${common[@]}" --strategy fedprox --proximal-mu 0.1
    run fedadam "${common[@]}" --strategy fedadam --server-learning-rate 0.01 --tau 1e-3
    run fedyogi "${common[@]}" --strategy fedyogi
    run fedadagrad "${common[@]}" --strategy fedadagrad --server-learning-rate 0.01 --tau 1e-3
    ;;
memory)
    # Training volume does not change what aggregation holds: 100 examples per client keep it short.
    common=(--clients 100 --rounds 1 --alpha 0.5 --max-train-examples 100)
    run fedavg-100 "${common[@]}" --strategy fedavg
    run fedmedian-100 "${common[@]}" --strategy fedmedian
    run fedtrimmedavg-100 "${common[@]}" --strategy fedtrimmedavg
    run krum-100 "${common[@]}" --strategy krum --num-malicious-clients 10
    run multikrum-100 "${common[@]}" --strategy multikrum --num-malicious-clients 10 --num-clients-to-keep 50
    run bulyan-100 "${common[@]}" --strategy bulyan --num-malicious-clients 10
    ;;
*) echo "usage: $0 byzantine|strategies|memory" >&2; exit 2 ;;
esac
