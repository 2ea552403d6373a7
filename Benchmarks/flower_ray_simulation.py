#!/usr/bin/env python3
"""Flower 1.42's simulation engine (Ray backend) on `flwr simulate`'s cross-device task, for
BENCHMARKS.md ("flwr simulate at cross-device scale"):

    pip install 'flwr[simulation]==1.42.0'
    python3 Benchmarks/flower_ray_simulation.py --clients 1000 --per-round 50 --rounds 3

Fashion-MNIST (Debian's IDX files) split IID into N clients (one seeded permutation cut into N
near-equal chunks), M sampled per round, 1 local epoch, SGD lr 0.01 momentum 0.9, batch 32, the
reference CNN (4 x [conv3x3 -> ReLU -> maxpool 2] -> linear, as flwr's cnn4), inputs in [-1, 1],
central evaluation on the first 1,000 test images after every round, one CPU per virtual client.
Prints one line per round and the wall time; peak memory of the whole process tree is measured
from outside (Benchmarks/tree_peak_rss.py).
"""
import argparse
import gzip
import time

import numpy as np
import torch
import torch.nn as nn

DATA = "/usr/share/datasets/fashion-mnist"


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def make_net():
    layers, cin = [], 1
    for cout in (32, 64, 128, 256):
        layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        cin = cout
    layers += [nn.Flatten(), nn.Linear(cin, 10)]
    return nn.Sequential(*layers)


def tensors(images, labels):
    x = torch.from_numpy(images.astype(np.float32) / 255.0 * 2 - 1).unsqueeze(1)
    return x, torch.from_numpy(labels.astype(np.int64))


def get_weights(net):
    return [v.detach().cpu().numpy() for v in net.state_dict().values()]


def set_weights(net, weights):
    net.load_state_dict({k: torch.tensor(w) for k, w in zip(net.state_dict().keys(), weights)})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=1000)
    ap.add_argument("--per-round", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args()

    from flwr.client import ClientApp, NumPyClient
    from flwr.common import Context, ndarrays_to_parameters
    from flwr.server import ServerApp, ServerAppComponents, ServerConfig
    from flwr.server.strategy import FedAvg
    from flwr.simulation import run_simulation

    n, m, seed = args.clients, args.per_round, args.seed

    class Client(NumPyClient):
        def __init__(self, pid):
            torch.set_num_threads(1)
            images = read_idx(f"{DATA}/train-images-idx3-ubyte.gz")
            labels = read_idx(f"{DATA}/train-labels-idx1-ubyte.gz")
            order = np.random.default_rng(seed).permutation(len(labels))
            mine = np.sort(np.array_split(order, n)[pid])
            self.x, self.y = tensors(images[mine], labels[mine])
            self.net = make_net()

        def fit(self, parameters, config):
            set_weights(self.net, parameters)
            opt = torch.optim.SGD(self.net.parameters(), lr=0.01, momentum=0.9)
            loss_fn = nn.CrossEntropyLoss()
            perm = torch.randperm(len(self.y))
            self.net.train()
            for i in range(0, len(perm), 32):
                b = perm[i:i + 32]
                opt.zero_grad()
                loss_fn(self.net(self.x[b]), self.y[b]).backward()
                opt.step()
            return get_weights(self.net), len(self.y), {}

    def client_fn(context: Context):
        return Client(int(context.node_config["partition-id"])).to_client()

    test_x, test_y = tensors(read_idx(f"{DATA}/t10k-images-idx3-ubyte.gz")[:1000],
                             read_idx(f"{DATA}/t10k-labels-idx1-ubyte.gz")[:1000])
    torch.manual_seed(seed)
    initial = get_weights(make_net())

    def evaluate(server_round, parameters, config):
        net = make_net()
        set_weights(net, parameters)
        net.eval()
        with torch.no_grad():
            out = net(test_x)
            loss = nn.functional.cross_entropy(out, test_y).item()
            acc = (out.argmax(1) == test_y).float().mean().item()
        print(f"round {server_round}: accuracy {acc:.4f} loss {loss:.4f} at {time.time() - start:.1f} s", flush=True)
        return loss, {"accuracy": acc}

    def server_fn(context: Context):
        strategy = FedAvg(fraction_fit=(m + 0.5) / n, fraction_evaluate=0.0, min_fit_clients=m,
                          min_evaluate_clients=0, min_available_clients=n,
                          initial_parameters=ndarrays_to_parameters(initial), evaluate_fn=evaluate)
        return ServerAppComponents(strategy=strategy, config=ServerConfig(num_rounds=args.rounds))

    start = time.time()
    run_simulation(server_app=ServerApp(server_fn=server_fn), client_app=ClientApp(client_fn=client_fn),
                   num_supernodes=n, backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0}})
    print(f"wall time {time.time() - start:.1f} s", flush=True)


if __name__ == "__main__":
    main()
