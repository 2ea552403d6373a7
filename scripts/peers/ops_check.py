#!/usr/bin/env python3
"""Peers nobody here wrote, reading what flwr's operations features produce (Tests/flwrTests/OpsReleaseTests.swift).

  ops_check.py metrics BEFORE AFTER NAME:TYPE... [--moves NAME...]
      Parses two /metrics bodies with prometheus_client's text parser; every NAME must be a
      family of TYPE in AFTER (and BEFORE); every --moves NAME must have a different sample sum
      in AFTER than in BEFORE. Prints one JSON object with the families' values.
  ops_check.py tensorboard DIR HISTORY_JSONL [EPSILON]
      Loads DIR with TensorBoard's EventAccumulator and checks that the accuracy, loss and
      round_seconds scalars equal history.jsonl's accuracy, loss and seconds per round (per epoch
      for `flwr train --metrics-out`; float32),
      and, given EPSILON, that the epsilon scalar is EPSILON at every round.
"""
import json
import math
import sys


def families(path):
    from prometheus_client.parser import text_string_to_metric_families
    with open(path, encoding="utf-8") as f:
        text = f.read()
    return {fam.name: fam for fam in text_string_to_metric_families(text)}


def family_name(name, kind):
    # prometheus_client names a counter family without its _total suffix.
    return name[: -len("_total")] if kind == "counter" and name.endswith("_total") else name


def total(fam):
    # The sum of a family's main samples (histograms: their _count), to see whether it moved.
    s = 0.0
    for sample in fam.samples:
        if fam.type == "histogram" and not sample.name.endswith("_count"):
            continue
        if fam.type == "counter" and not sample.name.endswith("_total"):
            continue
        if not math.isnan(sample.value):
            s += sample.value
    return s


def check_metrics(args):
    before, after = families(args[0]), families(args[1])
    rest = args[2:]
    moves = []
    if "--moves" in rest:
        i = rest.index("--moves")
        rest, moves = rest[:i], rest[i + 1:]
    problems = []
    report = {}
    for spec in rest:
        name, kind = spec.rsplit(":", 1)
        fam_name = family_name(name, kind)
        for label, fams in (("before", before), ("after", after)):
            fam = fams.get(fam_name)
            if fam is None:
                problems.append(f"{name}: no {kind} family {fam_name} {label} the federation")
            elif fam.type != kind:
                problems.append(f"{name}: type {fam.type}, expected {kind}")
        if fam_name in after:
            report[name] = {"before": total(before[fam_name]) if fam_name in before else None,
                            "after": total(after[fam_name])}
    for name in moves:
        r = report.get(name)
        if r is None or r["before"] == r["after"]:
            problems.append(f"{name} did not move during the federation: {r}")
    print(json.dumps(report, sort_keys=True))
    if problems:
        print("\n".join(problems), file=sys.stderr)
        sys.exit(1)


def step_of(line):
    # history.jsonl lines have a round; `flwr train --metrics-out` lines an epoch.
    return line["round"] if "round" in line else line["epoch"]


def check_tensorboard(args):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(args[0], size_guidance={"scalars": 0})
    acc.Reload()
    tags = acc.Tags()["scalars"]
    with open(args[1], encoding="utf-8") as f:
        history = [json.loads(line) for line in f if line.strip()]
    problems = []
    pairs = [("accuracy", "accuracy"), ("loss", "loss"), ("round_seconds", "seconds")]
    checked = 0
    for tag, key in pairs:
        if tag not in tags:
            problems.append(f"scalar {tag} missing; event file has {tags}")
            continue
        events = {e.step: e.value for e in acc.Scalars(tag)}
        want = {step_of(h): h[key] for h in history if h.get(key) is not None}
        if sorted(events) != sorted(want):
            problems.append(f"{tag}: steps {sorted(events)} != rounds {sorted(want)}")
        for step, value in want.items():
            got = events.get(step)
            # TensorBoard stores simple_value as float32.
            if got is None or abs(got - value) > 1e-6 * max(1.0, abs(value)):
                problems.append(f"{tag} at round {step}: tensorboard {got}, history.jsonl {value}")
            checked += 1
    if len(args) > 2:
        eps = float(args[2])
        got = [(e.step, e.value) for e in acc.Scalars("epsilon")] if "epsilon" in tags else []
        if [s for s, _ in got] != [step_of(h) for h in history] or any(abs(v - eps) > 1e-6 for _, v in got):
            problems.append(f"epsilon scalars {got}, expected {eps} at every round")
    extra = {t: [(e.step, e.value) for e in acc.Scalars(t)] for t in tags if t not in dict(pairs)}
    print(json.dumps({"tags": sorted(tags), "checked": checked, "extra": extra}))
    if problems:
        print("\n".join(problems), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    {"metrics": check_metrics, "tensorboard": check_tensorboard}[sys.argv[1]](sys.argv[2:])
