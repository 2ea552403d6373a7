#!/usr/bin/env python3
"""Opacus side of the DP-SGD comparison (BENCHMARKS.md, "Record-level DP-SGD"), and plain PyTorch.

    pip install torch==2.13.0+cpu opacus==1.6.0
    python3 Benchmarks/opacus_train.py --train N --epochs E --batch B --lr LR --momentum M \
        --clip C --target-epsilons 1,3,8 [--threads 2] [--plain]

The reference CNN (flwr's zoo cnn4, the same nn.Sequential as Benchmarks/pytorch_train.py) on the
first N Fashion-MNIST training images, scaled to [-1, 1] as flwr does; Opacus 1.6's
PrivacyEngine.make_private with Poisson sampling (sample rate 1/ceil(N/B)), clip C, and for each target ε
the noise multiplier Opacus's get_noise_multiplier (RDP accountant, delta 1e-5) gives for E epochs.
One JSON line per run: sigma, the epsilon Opacus's accountant reports after training, test
accuracy on all 10,000 test images, training images/s (images its Poisson batches drew over
training wall time). --plain adds one run of E epochs of ordinary SGD (no Opacus) at batch B: the
cost of Opacus's per-sample hooks over plain PyTorch.
"""
import argparse
import gzip
import json
import time
import warnings

import numpy as np
import torch
import torch.nn as nn
from opacus import PrivacyEngine
from opacus.accountants.utils import get_noise_multiplier

warnings.filterwarnings("ignore")
DATA = "/usr/share/datasets/fashion-mnist"


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def make_net():
    layers, cin = [], 1
    for cout in (32, 64, 128, 256):
        layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        cin = cout
    layers += [nn.Flatten(), nn.Linear(cin, 10)]
    return nn.Sequential(*layers)


def accuracy(net, xt, yt):
    net.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(xt), 1000):
            correct += (net(xt[i:i + 1000]).argmax(1) == yt[i:i + 1000]).sum().item()
    net.train()
    return correct / len(xt)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", type=int, default=10000)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--delta", type=float, default=1e-5)
    ap.add_argument("--target-epsilons", default="1,3,8")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--plain", action="store_true")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    x = torch.from_numpy(read_idx(f"{DATA}/train-images-idx3-ubyte.gz")[:args.train].astype(np.float32) / 255 * 2 - 1)
    y = torch.from_numpy(read_idx(f"{DATA}/train-labels-idx1-ubyte.gz")[:args.train].astype(np.int64))
    xt = torch.from_numpy(read_idx(f"{DATA}/t10k-images-idx3-ubyte.gz").astype(np.float32) / 255 * 2 - 1)
    yt = torch.from_numpy(read_idx(f"{DATA}/t10k-labels-idx1-ubyte.gz").astype(np.int64))
    x, xt = x.unsqueeze(1), xt.unsqueeze(1)
    dataset = torch.utils.data.TensorDataset(x, y)
    loss_fn = nn.CrossEntropyLoss()
    # Opacus's make_private samples at 1/len(loader) = 1/ceil(N/B) with len(loader) steps per
    # epoch; flwr is given the same rate (--sampling-rate) so both run the same mechanism.
    q = 1 / -(-args.train // args.batch)
    if args.plain:
        torch.manual_seed(args.seed)
        net = make_net()
        opt = torch.optim.SGD(net.parameters(), lr=args.lr, momentum=args.momentum)
        loader = torch.utils.data.DataLoader(dataset, batch_size=args.batch, shuffle=True)
        seen, start = 0, time.perf_counter()
        for _ in range(args.epochs):
            for xb, yb in loader:
                opt.zero_grad()
                loss_fn(net(xb), yb).backward()
                opt.step()
                seen += len(yb)
        seconds = time.perf_counter() - start
        print(json.dumps({"impl": "pytorch", "dp": False, "epochs": args.epochs, "batch": args.batch,
                          "accuracy": accuracy(net, xt, yt), "images_per_s": round(seen / seconds, 1),
                          "seconds": round(seconds, 1)}), flush=True)
    for target in [float(t) for t in args.target_epsilons.split(",") if t]:
        torch.manual_seed(args.seed)
        sigma = get_noise_multiplier(target_epsilon=target, target_delta=args.delta, sample_rate=q,
                                     epochs=args.epochs, accountant="rdp")
        net = make_net()
        opt = torch.optim.SGD(net.parameters(), lr=args.lr, momentum=args.momentum)
        loader = torch.utils.data.DataLoader(dataset, batch_size=args.batch, shuffle=True)
        engine = PrivacyEngine(accountant="rdp")
        net, opt, loader = engine.make_private(module=net, optimizer=opt, data_loader=loader, noise_multiplier=sigma,
                                               max_grad_norm=args.clip, poisson_sampling=True)
        seen, start = 0, time.perf_counter()
        for _ in range(args.epochs):
            for xb, yb in loader:
                opt.zero_grad()
                if len(yb) > 0:
                    loss_fn(net(xb), yb).backward()
                opt.step()
                seen += len(yb)
        seconds = time.perf_counter() - start
        print(json.dumps({"impl": "opacus", "dp": True, "target_epsilon": target, "sigma": sigma,
                          "epsilon": engine.get_epsilon(args.delta), "sample_rate": q, "steps": len(loader) * args.epochs,
                          "epochs": args.epochs, "accuracy": accuracy(net._module, xt, yt),
                          "images_per_s": round(seen / seconds, 1), "seconds": round(seconds, 1)}), flush=True)


if __name__ == "__main__":
    main()
