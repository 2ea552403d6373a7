#!/usr/bin/env python3
"""Per-example gradients of a flwr network spec with torch.func (vmap over grad), for DP-SGD.

    torch_per_example.py SPEC.json WEIGHTS.npz INPUT.npz OUT.npz MAX_GRAD_NORM

INPUT holds "images" (N×C×H×W) and "labels" (N). OUT gets "norms" (N: each example's gradient
norm over all parameters, of its own cross-entropy) and, for every parameter, "clipped.NAME":
sum_i min(1, C/norm_i) * grad_i — what one DP-SGD step adds before noise (Opacus's clipping).
The network is torch_spec.build's twin of ours (scripts/torch_spec.py).
"""
import json
import os
import sys

import numpy as np
import torch
from torch.func import functional_call, grad, vmap

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_spec  # noqa: E402


def main():
    spec_path, weights_path, input_path, out_path, c = sys.argv[1:6]
    c = float(c)
    inputs = np.load(input_path)
    images = torch.from_numpy(inputs["images"].astype(np.float32))
    labels = torch.from_numpy(inputs["labels"].astype(np.int64))
    net = torch_spec.build(json.load(open(spec_path)), images.shape[1], images.shape[2:])
    weights = np.load(weights_path)
    net.load_state_dict({k: torch.from_numpy(weights[k]) for k in weights.files}, strict=True)
    net.eval()
    torch.set_num_threads(1)
    params = {k: v.detach() for k, v in net.named_parameters()}

    def loss(p, x, y):
        out = functional_call(net, p, (x.unsqueeze(0),))
        return torch.nn.functional.cross_entropy(out, y.unsqueeze(0))

    per = vmap(grad(loss), in_dims=(None, 0, 0))(params, images, labels)
    sq = sum(g.double().flatten(1).pow(2).sum(1) for g in per.values())
    norms = sq.sqrt()
    factor = (c / norms).clamp(max=1.0)
    clipped = {f"clipped.{k}": torch.einsum("i,i...->...", factor, g.double()).float().numpy() for k, g in per.items()}
    np.savez(out_path, norms=norms.numpy(), **clipped)
    print(f"torch {torch.__version__}: {len(per)} per-example gradients of {images.shape[0]} examples, "
          f"norms {norms.min().item():.4g}..{norms.max().item():.4g}")


if __name__ == "__main__":
    main()
