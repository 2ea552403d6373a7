#!/usr/bin/env python3
"""Writes each edge site's own data for scripts/netns-federation-test --own-data.

usage: netns-site-data.py FASHION_MNIST_DIR SPLIT_NPZ OUT_DIR CLIENTS MAX_TRAIN MAX_TEST

Site i gets OUT_DIR/site-i/partition.npz: the first MAX_TRAIN training images (uint8 N×1×28×28,
int64 labels) of partition i of the Dirichlet split in SPLIT_NPZ (arrays p0, p1, … as written by
`flwr partition --indices-out`), and OUT_DIR/site-i/test.npz: every CLIENTS-th test image from i,
at most MAX_TEST. Read with numpy only: a writer nobody in flwr wrote.
"""
import gzip
import os
import sys

import numpy as np


def idx(path):
    with gzip.open(path) as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def main():
    source, split_path, out, clients, max_train, max_test = sys.argv[1:7]
    clients, max_train, max_test = int(clients), int(max_train), int(max_test)
    train_x = idx(os.path.join(source, "train-images-idx3-ubyte.gz"))
    train_y = idx(os.path.join(source, "train-labels-idx1-ubyte.gz"))
    test_x = idx(os.path.join(source, "t10k-images-idx3-ubyte.gz"))
    test_y = idx(os.path.join(source, "t10k-labels-idx1-ubyte.gz"))
    split = np.load(split_path)
    for i in range(clients):
        site = os.path.join(out, f"site-{i}")
        os.makedirs(site, exist_ok=True)
        chosen = split[f"p{i}"][:max_train]
        images = train_x[chosen][:, None, :, :]
        labels = train_y[chosen].astype(np.int64)
        np.savez(os.path.join(site, "partition.npz"), images=images, labels=labels, classes=np.int64(10))
        test = np.arange(i, len(test_y), clients)[:max_test]
        np.savez(os.path.join(site, "test.npz"), images=test_x[test][:, None, :, :],
                 labels=test_y[test].astype(np.int64), classes=np.int64(10))
        histogram = np.bincount(labels, minlength=10)
        print(f"site-{i}: {len(labels)} training images, labels {' '.join(map(str, histogram))}; {len(test)} test images")


if __name__ == "__main__":
    main()
