#!/usr/bin/env python3
"""The PyTorch twin of a flwr network spec (README, "Models").

    import torch_spec
    net = torch_spec.build(json.load(open("net.json")), in_channels=1, input_hw=(28, 28))
    net.load_state_dict({k: torch.from_numpy(v) for k, v in numpy.load("model.npz").items()})

Layer i of the spec is module i of an nn.Sequential (or the layer's "name"), so the parameter
names are PyTorch's own ("0.weight", "fc.bias"); a residual block is `Residual` below, with the
children `body` and `shortcut` ("3.body.0.weight"). As a script it checks our logits:
    torch_spec.py SPEC.json WEIGHTS.npz INPUT.npz OUT.npz   (INPUT has "images" N×C×H×W)
writes the PyTorch logits as OUT.npz["logits"]. When INPUT also has "labels" (N integers), OUT
also holds autograd's gradient of the mean cross-entropy (nn.CrossEntropyLoss) of those logits
for every parameter, as "grad.NAME" (e.g. "grad.0.weight").
"""
import collections
import json
import sys

import numpy as np
import torch
from torch import nn


class Residual(nn.Module):
    """body(x) + shortcut(x); an empty shortcut is the identity."""

    def __init__(self, body, shortcut):
        super().__init__()
        self.body = body
        self.shortcut = shortcut

    def forward(self, x):
        return self.body(x) + self.shortcut(x)


def _sequential(layers, channels):
    mods = collections.OrderedDict()
    c = channels
    for i, layer in enumerate(layers):
        t = layer["type"]
        if t == "conv2d":
            m = nn.Conv2d(c, layer["out_channels"], layer["kernel_size"], stride=layer.get("stride", 1),
                          padding=layer.get("padding", 0))
            c = layer["out_channels"]
        elif t == "maxpool2d":
            k = layer["kernel_size"]
            m = nn.MaxPool2d(k, stride=layer.get("stride", k), padding=layer.get("padding", 0))
        elif t == "avgpool2d":
            k = layer["kernel_size"]
            m = nn.AvgPool2d(k, stride=layer.get("stride", k), padding=layer.get("padding", 0))
        elif t == "global_avgpool":
            m = nn.AdaptiveAvgPool2d(1)
        elif t == "relu":
            m = nn.ReLU()
        elif t == "flatten":
            m = nn.Flatten()
        elif t == "linear":
            m = nn.LazyLinear(layer["out_features"])
        elif t == "dropout":
            m = nn.Dropout(layer.get("p", 0.5))
        elif t == "groupnorm":
            m = nn.GroupNorm(layer["num_groups"], c, eps=layer.get("eps", 1e-5))
        elif t == "residual":
            body, cb = _sequential(layer["body"], c)
            shortcut, _ = _sequential(layer.get("shortcut", []), c)
            m = Residual(body, shortcut)
            c = cb
        else:
            raise ValueError(f"layer {i}: unknown type {t!r}")
        mods[layer.get("name", str(i))] = m
    return nn.Sequential(mods), c


def build(spec, in_channels, input_hw=None):
    """nn.Sequential for a spec (list of layers, or {"layers": [...]}); lazy linear layers are
    materialised with one forward pass of zeros when input_hw is given (needed before
    load_state_dict)."""
    layers = spec["layers"] if isinstance(spec, dict) else spec
    net, _ = _sequential(layers, in_channels)
    if input_hw is not None:
        with torch.no_grad():
            net.eval()(torch.zeros(1, in_channels, *input_hw))
    return net


def main():
    spec_path, weights_path, input_path, out_path = sys.argv[1:5]
    images = np.load(input_path)["images"].astype(np.float32)
    net = build(json.load(open(spec_path)), images.shape[1], images.shape[2:])
    weights = np.load(weights_path)
    net.load_state_dict({k: torch.from_numpy(weights[k]) for k in weights.files}, strict=True)
    net.eval()
    torch.set_num_threads(1)
    inputs = np.load(input_path)
    if "labels" not in inputs.files:
        with torch.no_grad():
            logits = net(torch.from_numpy(images)).numpy()
        np.savez(out_path, logits=logits)
        print(f"torch {torch.__version__}: {len(weights.files)} tensors loaded, logits {logits.shape}")
        return
    labels = torch.from_numpy(inputs["labels"].astype(np.int64))
    net.zero_grad()
    out = net(torch.from_numpy(images))
    loss = nn.functional.cross_entropy(out, labels)
    loss.backward()
    grads = {f"grad.{name}": p.grad.numpy() for name, p in net.named_parameters()}
    np.savez(out_path, logits=out.detach().numpy(), loss=np.array([loss.item()]), **grads)
    print(f"torch {torch.__version__}: loss {loss.item():.6f}, {len(grads)} gradients")


if __name__ == "__main__":
    main()
