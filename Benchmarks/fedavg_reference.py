#!/usr/bin/env python3
"""PyTorch FedAvg reference for `flwr simulate`: the same CNN, data, partition and hyper-parameters,
without Flower's runtime, so that accuracy per round can be compared engine to engine.

    pip install torch==2.13.0+cpu flwr-datasets     # flwr-datasets only for --partitioner flwr-datasets
    python3 Benchmarks/fedavg_reference.py [--rounds 5] [--partitioner flwr-datasets|indices]
        [--indices FILE.npz] [--threads 2]

--partitioner flwr-datasets: Flower Datasets' DirichletPartitioner(num_partitions=10,
  partition_by="label", alpha=0.5, seed=42), the split Flower's own runs use, applied to the
  Fashion-MNIST training labels read from Debian's IDX files.
--partitioner indices: the split in FILE.npz (arrays p0, p1, ... of training-set indices), e.g.
  written by `flwr partition --alpha 0.5 --seed 42 --indices-out FILE.npz`.

Each round: every client starts from the global model, trains 1 epoch (SGD lr 0.01, momentum
0.9, batch 32, shuffled, fresh optimizer), and the server averages the parameters weighted by
example counts, then evaluates on the 10,000 test images. Inputs scaled to [-1, 1]. One JSON line
per round on stdout; a histogram of the partition on stderr.
"""
import argparse
import gzip
import json
import sys
import time

import numpy as np
import torch
import torch.nn as nn


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def make_net(c=1, h=28, w=28, classes=10):
    layers, cin = [], c
    for cout in (32, 64, 128, 256):
        layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        cin = cout
    layers += [nn.Flatten(), nn.Linear(cin * (h // 16) * (w // 16), classes)]
    return nn.Sequential(*layers)


def flwr_datasets_split(labels, n, alpha, seed):
    from datasets import Dataset
    from flwr_datasets.partitioner import DirichletPartitioner
    part = DirichletPartitioner(num_partitions=n, partition_by="label", alpha=alpha, seed=seed)
    part.dataset = Dataset.from_dict({"label": labels.astype(np.int64), "idx": np.arange(len(labels))})
    return [np.array(part.load_partition(i)["idx"]) for i in range(n)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--partitioner", choices=["flwr-datasets", "indices"], default="flwr-datasets")
    ap.add_argument("--indices")
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument("--alpha", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    d = args.data_dir
    x = read_idx(f"{d}/train-images-idx3-ubyte.gz").astype(np.float32) / 255 * 2 - 1
    y = read_idx(f"{d}/train-labels-idx1-ubyte.gz").astype(np.int64)
    xt = read_idx(f"{d}/t10k-images-idx3-ubyte.gz").astype(np.float32) / 255 * 2 - 1
    yt = read_idx(f"{d}/t10k-labels-idx1-ubyte.gz").astype(np.int64)
    x, xt = torch.from_numpy(x[:, None]), torch.from_numpy(xt[:, None])
    y, yt = torch.from_numpy(y), torch.from_numpy(yt)

    if args.partitioner == "flwr-datasets":
        parts = flwr_datasets_split(y.numpy(), args.clients, args.alpha, args.seed)
    else:
        z = np.load(args.indices)
        parts = [z[f"p{i}"] for i in range(args.clients)]
    for i, p in enumerate(parts):
        hist = np.bincount(y.numpy()[p], minlength=10)
        print(f"part {i}: {len(p):5d} " + " ".join(f"{c:5d}" for c in hist), file=sys.stderr)

    torch.manual_seed(args.seed)
    global_net = make_net()
    loss_fn = nn.CrossEntropyLoss()
    start = time.perf_counter()
    for rnd in range(1, args.rounds + 1):
        avg = {k: torch.zeros_like(v) for k, v in global_net.state_dict().items()}
        total = 0
        for i, p in enumerate(parts):
            net = make_net()
            net.load_state_dict(global_net.state_dict())
            opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
            g = torch.Generator().manual_seed(args.seed * 1000 + rnd * 100 + i)
            idx = torch.from_numpy(p)[torch.randperm(len(p), generator=g)]
            net.train()
            for s in range(0, len(idx), 32):
                b = idx[s:s + 32]
                opt.zero_grad()
                loss_fn(net(x[b]), y[b]).backward()
                opt.step()
            for k, v in net.state_dict().items():
                avg[k] += v * len(p)
            total += len(p)
        global_net.load_state_dict({k: v / total for k, v in avg.items()})
        with torch.no_grad():
            logits = torch.cat([global_net(xt[s:s + 1000]) for s in range(0, len(xt), 1000)])
            loss = loss_fn(logits, yt).item()
            acc = (logits.argmax(1) == yt).float().mean().item()
        print(json.dumps({"round": rnd, "loss": round(loss, 4), "accuracy": round(acc, 4),
                          "seconds": round(time.perf_counter() - start, 1)}), flush=True)


if __name__ == "__main__":
    main()
