#!/usr/bin/env python3
"""Runs a command and reports its wall time and the peak of the summed resident memory of its
whole process tree (every descendant, sampled from /proc every 0.2 s): what /usr/bin/time cannot
give for a program that spawns workers (Ray).

    python3 Benchmarks/tree_peak_rss.py -- COMMAND ARGS...
"""
import os
import subprocess
import sys
import time


def tree_rss_kb(root):
    children = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(pid))
        except (OSError, IndexError, ValueError):
            pass
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
        stack.extend(children.get(pid, []))
    return total


def main():
    cmd = sys.argv[sys.argv.index("--") + 1:]
    start = time.time()
    p = subprocess.Popen(cmd)
    peak = 0
    while p.poll() is None:
        peak = max(peak, tree_rss_kb(p.pid))
        time.sleep(0.2)
    print(f"tree: exit {p.returncode}, wall {time.time() - start:.1f} s, peak summed RSS {peak / 1024:.1f} MB", flush=True)
    sys.exit(p.returncode)


if __name__ == "__main__":
    main()
