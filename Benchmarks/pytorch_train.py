#!/usr/bin/env python3
"""PyTorch side of `flwr bench train`: the same CNN, batches, inputs and threads, same JSON lines.

    pip install torch==2.13.0+cpu        # CPU build; the default wheel wants CUDA libraries
    python3 Benchmarks/pytorch_train.py [--quick] [--seconds 2] [--threads 1,2]

Every line has "impl":"pytorch"; otherwise the fields match flwr's
({"bench":"train","input":"1x28x28","batch":32,"threads":2,"images_per_s":...}).
Training = forward + backward + SGD(momentum 0.9) step on synthetic data, as flwr measures it.
"""
import argparse
import json
import time

import torch
import torch.nn as nn


def make_net(c, h, w, classes=10):
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
    args = ap.parse_args()
    thread_counts = [int(t) for t in args.threads.split(",")] if args.threads else ([2] if args.quick else [1, 2])
    inputs = [(1, 28, 28), (3, 32, 32)]
    for c, h, w in inputs:
        for batch in ([32] if args.quick else [32, 64]):
            for threads in thread_counts:
                torch.set_num_threads(threads)
                rate = train_rate(c, h, w, batch, args.seconds)
                print(json.dumps({"bench": "train", "impl": "pytorch", "input": f"{c}x{h}x{w}", "batch": batch,
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
