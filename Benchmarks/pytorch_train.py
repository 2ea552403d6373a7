#!/usr/bin/env python3
"""PyTorch side of `flwr bench train`: the same CNN, batches, inputs and threads, same JSON lines.

    pip install torch==2.13.0+cpu        # CPU build; the default wheel wants CUDA libraries
    python3 Benchmarks/pytorch_train.py [--quick] [--seconds 2] [--threads 1,2] [--model NAME --flwr PATH]

Every line has "impl":"pytorch"; otherwise the fields match flwr's
({"bench":"train","input":"1x28x28","batch":32,"threads":2,"images_per_s":...}).
Training = forward + backward + SGD(momentum 0.9) step on synthetic data, as flwr measures it.
With --model (a zoo name) or --model-spec, the network is the nn.Sequential twin of flwr's
(scripts/torch_spec.py, spec printed by `flwr bench train --print-spec`), so both sides train
exactly the same layers; without, the reference CNN below.
"""
import argparse
import json
import time

import os
import subprocess
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
import torch_spec  # noqa: E402

SPEC_ARGS = None  # (flwr binary, extra flwr arguments) when --model/--model-spec is given


def make_net(c, h, w, classes=10):
    if SPEC_ARGS is not None:
        flwr, extra = SPEC_ARGS
        out = subprocess.run([flwr, "bench", "train", "--print-spec", "--input", f"{c}x{h}x{w}"] + extra,
                             check=True, capture_output=True, text=True).stdout
        return torch_spec.build(json.loads(out), c, (h, w))
    layers, cin = [], c
    for cout in (32, 64, 128, 256):
        layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        cin = cout
    layers += [nn.Flatten(), nn.Linear(cin * (h // 16) * (w // 16), classes)]
    return nn.Sequential(*layers)


def measure(seconds, units, body):
    body()
    start = time.perf_counter()
    runs = 0
    while True:
        body()
        runs += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return runs * units / elapsed


def train_rate(c, h, w, batch, seconds):
    torch.manual_seed(1)
    net = make_net(c, h, w)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    x = torch.rand(batch * 8, c, h, w)
    y = torch.randint(0, 10, (batch * 8,))
    loss_fn = nn.CrossEntropyLoss()

    def epoch():
        perm = torch.randperm(x.shape[0])
        for i in range(0, x.shape[0], batch):
            idx = perm[i:i + batch]
            opt.zero_grad()
            loss_fn(net(x[idx]), y[idx]).backward()
            opt.step()

    return measure(seconds, x.shape[0], epoch)


def infer_rate(c, h, w, batch, seconds):
    torch.manual_seed(1)
    net = make_net(c, h, w).eval()
    x = torch.rand(batch, c, h, w)

    def run():
        with torch.no_grad():
            net(x)

    return measure(seconds, batch, run)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="only 2-thread batch-32 training")
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--threads", help="thread counts for training, comma-separated (default 1,2; --quick: 2)")
    ap.add_argument("--model", help="zoo model (cnn4, lenet5, mlp, resnet8): build flwr's spec of it")
    ap.add_argument("--model-spec", help="a spec JSON file, as flwr's --model-spec")
    ap.add_argument("--hidden", default="256,128", help="mlp hidden sizes, as flwr's --hidden")
    ap.add_argument("--flwr", default=".build/release/flwr", help="flwr binary that prints the spec")
    ap.add_argument("--input", default="1x28x28,3x32x32", help="inputs CxHxW, comma-separated")
    args = ap.parse_args()
    global SPEC_ARGS
    if args.model or args.model_spec:
        extra = ["--model-spec", args.model_spec] if args.model_spec else ["--model", args.model, "--hidden", args.hidden]
        SPEC_ARGS = (args.flwr, extra)
    thread_counts = [int(t) for t in args.threads.split(",")] if args.threads else ([2] if args.quick else [1, 2])
    inputs = [tuple(int(d) for d in shape.split("x")) for shape in args.input.split(",")]
    for c, h, w in inputs:
        for batch in ([32] if args.quick else [32, 64]):
            for threads in thread_counts:
                torch.set_num_threads(threads)
                rate = train_rate(c, h, w, batch, args.seconds)
                print(json.dumps({"bench": "train", "impl": "pytorch", "model": args.model or args.model_spec or "cnn4",
                                  "input": f"{c}x{h}x{w}", "batch": batch,
                                  "threads": threads, "images_per_s": round(rate, 1)}), flush=True)
    if args.quick:
        return
    for c, h, w in inputs:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            rate = infer_rate(c, h, w, 256, args.seconds)
            print(json.dumps({"bench": "infer", "impl": "pytorch", "input": f"{c}x{h}x{w}", "batch": 256,
                              "threads": threads, "images_per_s": round(rate, 1)}), flush=True)


if __name__ == "__main__":
    main()
