"""Virtual time to a target accuracy, per run folder of Benchmarks/fedbuff.sh (sync, k5, k10).

Usage: python3 fedbuff_time_to_target.py TARGET DIR...
Prints one Markdown row per folder: the virtual seconds (and client fits) at which each run's
central accuracy first reaches TARGET, and sync's time divided by each FedBuff run's."""
import json
import sys


def first_hit(rows, target):
    for r in rows:
        if (r["accuracy"] or 0) >= target:
            return r["virtual_time"], sum(x["fit_clients"] for x in rows if x["round"] <= r["round"])
    return None, None


def main():
    target = float(sys.argv[1])
    print("| run | sync: virtual s (fits) | FedBuff K=5 | K=10 | sync / K=5 | sync / K=10 | best accuracy sync / K=5 / K=10 |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for root in sys.argv[2:]:
        cells, best, times = [], [], {}
        for run in ("sync", "k5", "k10"):
            rows = [json.loads(line) for line in open(f"{root}/{run}/history.jsonl")]
            t, fits = first_hit(rows, target)
            times[run] = t
            cells.append("not reached" if t is None else f"{t:.1f} ({fits})")
            best.append(f"{max((r['accuracy'] or 0) for r in rows):.4f}")
        ratios = [f"{times['sync'] / times[k]:.2f}×" if times["sync"] and times[k] else "—" for k in ("k5", "k10")]
        print(f"| {root.rstrip('/').split('/')[-1]} | " + " | ".join(cells + ratios) + " | " + " / ".join(best) + " |")


if __name__ == "__main__":
    main()
