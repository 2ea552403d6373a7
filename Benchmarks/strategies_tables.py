#!/usr/bin/env python3
"""Markdown tables of BENCHMARKS.md ("Strategies and attacks") from the runs of
Benchmarks/strategies.sh: reads OUT/MODE/NAME/{history.jsonl,time} (OUT defaults to
/tmp/flwr-strategies-bench) and prints the Byzantine, strategy and memory tables; runs that did
not finish are marked.

    strategies_tables.py --seeds 42=OUT42 1=OUT1 2=OUT2   # the Byzantine references over seeds
prints one row per seed (runs of `SEED=s OUT=OUTs Benchmarks/strategies.sh byzantine`): the share
of the training data the two malicious partitions hold, honest FedAvg over 10 and over the 8
honest clients, and Multi-Krum under both attacks, with the gaps."""
import json
import os
import subprocess
import sys

root = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("OUT", "/tmp/flwr-strategies-bench")


def load(mode, name, base=None):
    d = os.path.join(base or root, mode, name)
    try:
        rows = [json.loads(l) for l in open(os.path.join(d, "history.jsonl")) if l.strip()]
    except OSError:
        return None
    wall = rss = None
    try:
        parts = open(os.path.join(d, "time")).read().split()
        wall, rss = float(parts[-2]), int(parts[-1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    return rows, wall, rss


def stopped(mode, name):
    try:
        return any(l.startswith("Error:") for l in open(os.path.join(root, mode, name, "stderr")))
    except OSError:
        return False


def acc(rows, k):
    return f"{rows[k]['accuracy']:.4f}" if len(rows) > k and rows[k]["accuracy"] is not None else "—"


def seeds_table(pairs):
    """The Byzantine references per seed; pairs are "SEED=OUTDIR"."""
    import numpy as np
    flwr = os.environ.get("FLWR_BIN", ".build/release/flwr")
    print("| seed | malicious partitions' share of the data | honest fedavg, 10 clients | honest fedavg, 8 clients | multikrum (m = 8), sign-flip ×10 | multikrum (m = 8), gaussian ×10 | best robust − honest 10 |")
    print("|---|---|---|---|---|---|---|")
    gaps = []
    for pair in pairs:
        seed, out = pair.split("=", 1)
        split = f"/tmp/strategies-split-{seed}.npz"
        subprocess.run([flwr, "partition", "--num-partitions", "10", "--alpha", "0.5", "--seed", seed,
                        "--indices-out", split], check=True, capture_output=True)
        sizes = [len(v) for v in np.load(split).values()]
        share = (sizes[0] + sizes[1]) / sum(sizes)
        final = {}
        for name in ["honest-fedavg", "honest8-fedavg", "sign-flip-multikrum", "gaussian-multikrum"]:
            r = load("byzantine", name, base=out)
            final[name] = r[0][4]["accuracy"] if r and len(r[0]) >= 5 else None
        h = final["honest-fedavg"]
        robust = [a for a in (final["sign-flip-multikrum"], final["gaussian-multikrum"]) if a is not None]
        gap = (min(robust) - h) * 100 if robust and h is not None else None
        if gap is not None:
            gaps.append(gap)
        cell = lambda a: "—" if a is None else f"{a:.4f}"
        print(f"| {seed} | {share:.1%} ({sizes[0]:,} + {sizes[1]:,}) | " + " | ".join(cell(final[n]) for n in final)
              + f" | {'—' if gap is None else f'{gap:+.1f} pts'} |")
    if gaps:
        print(f"| mean | | | | | | {sum(gaps) / len(gaps):+.1f} pts |")


if len(sys.argv) > 1 and sys.argv[1] == "--seeds":
    seeds_table(sys.argv[2:])
    sys.exit(0)


strategies = ["fedavg", "fedmedian", "fedtrimmedavg", "krum", "multikrum", "bulyan"]
honest = load("byzantine", "honest-fedavg")
h5 = honest[0][4]["accuracy"] if honest and len(honest[0]) >= 5 else None
honest8 = load("byzantine", "honest8-fedavg")
o5 = honest8[0][4]["accuracy"] if honest8 and len(honest8[0]) >= 5 else None
print("| strategy | sign-flip ×10: accuracy after round 5 | gap to honest fedavg (10 / 8 clients) | gaussian ×10: accuracy after round 5 | gap (10 / 8 clients) |")
print("|---|---|---|---|---|")
print(f"| honest fedavg, all 10 clients (no attack) | {acc(honest[0], 4) if honest else '—'} | | | |")
print(f"| honest fedavg, the 8 honest clients only (what a perfect defence reaches) | {acc(honest8[0], 4) if honest8 else '—'} | | | |")
for s in strategies:
    cells = []
    for attack in ["sign-flip", "gaussian"]:
        r = load("byzantine", f"{attack}-{s}")
        if r is None or len(r[0]) < 5:
            done = 0 if r is None else len(r[0])
            if stopped("byzantine", f"{attack}-{s}"):
                last = acc(r[0], done - 1) if done else "—"
                cells += [f"collapsed: server stopped in round {done + 1} (non-finite updates); {last} after round {done}", ""]
            else:
                cells += [f"not measured in time ({done}/5 rounds done)", ""]
            continue
        a = r[0][4]["accuracy"]
        gaps = [f"{(a - h) * 100:+.1f}" for h in (h5, o5) if h is not None]
        cells += [f"{a:.4f}", " / ".join(gaps) + " pts" if gaps else ""]
    print(f"| {s} | " + " | ".join(cells) + " |")

print()
names = ["fedavg", "fedavgm", "fedprox", "fedadam", "fedyogi", "fedadagrad"]
print("| round | " + " | ".join(names) + " |")
print("|---|" + "---|" * len(names))
runs = {n: load("strategies", n) for n in names}
for k in range(10):
    print(f"| {k + 1} | " + " | ".join(acc(runs[n][0], k) if runs[n] else "not measured in time" for n in names) + " |")
print("| wall time | " + " | ".join(f"{runs[n][1]:.0f} s" if runs[n] and runs[n][1] else "—" for n in names) + " |")

print()
print("| strategy (100 clients, 1 round) | peak RSS of the whole simulation | wall time |")
print("|---|---|---|")
for s in ["fedavg", "fedmedian", "fedtrimmedavg", "krum", "multikrum", "bulyan"]:
    r = load("memory", f"{s}-100")
    print(f"| {s} | {r[2]} MB | {r[1]:.0f} s |" if r and r[1] else f"| {s} | — | — |")
