#!/usr/bin/env python3
"""An ordinary Flower NumPyClient with a PyTorch model: what a Flower user already has.

Nothing in it knows about flwr (the Swift binary): it trains the PyTorch twin of flwr's reference
CNN (`cnn4`) on one partition of real Fashion-MNIST and joins a server with Flower's own
`flwr.client.start_client` (Flower's legacy gRPC protocol). flwr's tests run it against
`flwr server --flower-port` (Tests/flwrTests/FlowerCompatReleaseTests.swift).

    flower_client.py --server 127.0.0.1:9092 --partition 0 --num-partitions 3 [--max-train-examples N]
                     [--indices SPLIT.npz] [--send-dtype float64] [--save-model PATH.pt]

Preprocessing matches flwr's (pixels scaled to [-1, 1]); the partition is every
num_partitions-th image of a seeded permutation of the training set, or with --indices the
training-set indices `p<partition>` of an .npz (`flwr partition --alpha 0.5 --indices-out`: the
Dirichlet split of Flower Datasets' DirichletPartitioner, the one `flwr simulate` trains on).
"""
import argparse
import collections
import gzip
import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import flwr as fl

DATA = "/usr/share/datasets/fashion-mnist"


class Net(nn.Module):
    """flwr's cnn4: 4 x [conv3x3 pad 1 -> ReLU -> maxpool 2], then a linear layer."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.conv3 = nn.Conv2d(64, 128, 3, padding=1)
        self.conv4 = nn.Conv2d(128, 256, 3, padding=1)
        self.fc = nn.Linear(256, 10)

    def forward(self, x):
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4):
            x = F.max_pool2d(F.relu(conv(x)), 2)
        return self.fc(torch.flatten(x, 1))


def load(kind):
    with gzip.open(os.path.join(DATA, f"{kind}-images-idx3-ubyte.gz")) as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)
    with gzip.open(os.path.join(DATA, f"{kind}-labels-idx1-ubyte.gz")) as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)
    return torch.tensor(images.astype(np.float32) / 255 * 2 - 1), torch.tensor(labels.astype(np.int64))


class FashionClient(fl.client.NumPyClient):
    def __init__(self, net, train, test, send_dtype):
        self.net, self.train, self.test, self.send_dtype = net, train, test, send_dtype

    def get_parameters(self, config):
        return [v.detach().cpu().numpy().astype(self.send_dtype) for v in self.net.state_dict().values()]

    def set_parameters(self, parameters):
        keys = self.net.state_dict().keys()
        self.net.load_state_dict(collections.OrderedDict((k, torch.tensor(v)) for k, v in zip(keys, parameters)), strict=True)

    def fit(self, parameters, config):
        self.set_parameters(parameters)
        epochs = int(config.get("epochs", 1))
        lr = float(config.get("lr", 0.05))
        batch = int(config.get("batch_size", 32))
        opt = torch.optim.SGD(self.net.parameters(), lr=lr, momentum=float(config.get("momentum", 0.0)))
        x, y = self.train
        self.net.train()
        total = 0.0
        for _ in range(epochs):
            order = torch.randperm(len(y))
            for i in range(0, len(y), batch):
                idx = order[i:i + batch]
                opt.zero_grad()
                loss = F.cross_entropy(self.net(x[idx]), y[idx])
                loss.backward()
                opt.step()
                total += float(loss) * len(idx)
        return self.get_parameters({}), len(y), {"train_loss": total / max(1, epochs * len(y))}

    def evaluate(self, parameters, config):
        self.set_parameters(parameters)
        x, y = self.test
        self.net.eval()
        with torch.no_grad():
            logits = self.net(x)
            loss = float(F.cross_entropy(logits, y))
            accuracy = float((logits.argmax(1) == y).float().mean())
        return loss, len(y), {"accuracy": accuracy}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--server", required=True)
    p.add_argument("--partition", type=int, required=True)
    p.add_argument("--num-partitions", type=int, required=True)
    p.add_argument("--max-train-examples", type=int)
    p.add_argument("--indices", help="an .npz of training-set indices p0, p1, ... (flwr partition --indices-out)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--send-dtype", default="float32")
    p.add_argument("--root-cert")
    args = p.parse_args()
    torch.manual_seed(args.seed + args.partition)
    torch.set_num_threads(1)
    x, y = load("train")
    if args.indices:
        order = np.load(args.indices)[f"p{args.partition}"]
    else:
        order = np.random.default_rng(args.seed).permutation(len(y))[args.partition::args.num_partitions]
    if args.max_train_examples:
        order = order[:args.max_train_examples]
    tx, ty = load("t10k")
    test = (tx[args.partition::args.num_partitions][:500], ty[args.partition::args.num_partitions][:500])
    client = FashionClient(Net(), (x[order], y[order]), test, np.dtype(args.send_dtype))
    root = open(args.root_cert, "rb").read() if args.root_cert else None
    fl.client.start_client(server_address=args.server, client=client.to_client(),
                           insecure=root is None, root_certificates=root)
    print("flower client: done", flush=True)


if __name__ == "__main__":
    main()
