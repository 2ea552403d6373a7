#!/usr/bin/env python3
"""Flower's own legacy server (`flwr.server.start_server`, FedAvg): the peer `flwr client
--flower-server` joins in Tests/flwrTests/FlowerCompatReleaseTests.swift, and the baseline of
BENCHMARKS.md's Flower-server row.

    flower_server.py --address 127.0.0.1:9093 --rounds 2 --clients 2 [--history-out history.json] [--initial-cnn4]

Writes the run's History (losses and metrics per round, per client count) as JSON.
"""
import argparse
import json

import flwr as fl
from flwr.server.strategy import FedAvg


def weighted(metrics):
    n = sum(num for num, _ in metrics)
    keys = set().union(*(m.keys() for _, m in metrics)) if metrics else set()
    return {k: sum(num * float(m.get(k, 0)) for num, m in metrics) / max(1, n) for k in keys}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--address", required=True)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--clients", type=int, default=2)
    p.add_argument("--history-out")
    p.add_argument("--fit-config", default="{}", help='JSON sent in every FitIns, e.g. {"lr": 0.01}')
    p.add_argument("--initial-cnn4", action="store_true",
                   help="start from flower_client.py's PyTorch cnn4 instead of asking a client for parameters")
    args = p.parse_args()
    initial = None
    if args.initial_cnn4:
        import os, sys
        import torch
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from flower_client import Net
        torch.manual_seed(0)
        initial = fl.common.ndarrays_to_parameters([v.numpy() for v in Net().state_dict().values()])
    counts = {"fit": [], "evaluate": []}

    class CountingFedAvg(FedAvg):
        def aggregate_fit(self, server_round, results, failures):
            counts["fit"].append({"round": server_round, "results": len(results), "failures": len(failures),
                                  "num_examples": [r.num_examples for _, r in results]})
            return super().aggregate_fit(server_round, results, failures)

        def aggregate_evaluate(self, server_round, results, failures):
            counts["evaluate"].append({"round": server_round, "results": len(results), "failures": len(failures)})
            return super().aggregate_evaluate(server_round, results, failures)

    strategy = CountingFedAvg(min_fit_clients=args.clients, min_evaluate_clients=args.clients,
                              min_available_clients=args.clients, accept_failures=False, initial_parameters=initial,
                              on_fit_config_fn=lambda server_round: json.loads(args.fit_config),
                              fit_metrics_aggregation_fn=weighted, evaluate_metrics_aggregation_fn=weighted)
    history = fl.server.start_server(server_address=args.address, config=fl.server.ServerConfig(num_rounds=args.rounds),
                                     strategy=strategy)
    out = {"losses_distributed": history.losses_distributed,
           "metrics_distributed": {k: v for k, v in history.metrics_distributed.items()},
           "metrics_distributed_fit": {k: v for k, v in history.metrics_distributed_fit.items()},
           "rounds": counts}
    text = json.dumps(out)
    if args.history_out:
        with open(args.history_out, "w") as f:
            f.write(text)
    print("flower server history:", text, flush=True)


if __name__ == "__main__":
    main()
