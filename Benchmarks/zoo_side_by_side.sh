#!/usr/bin/env bash
# Every zoo model side by side with PyTorch 2.x in one run: training images/s, batch 32, at 1 and
# 2 threads, on 1x28x28 and 3x32x32, the same network on both sides (pytorch_train.py builds the
# nn.Sequential twin of flwr's spec). BENCHMARKS.md "Model zoo".
#   Benchmarks/zoo_side_by_side.sh [flwr binary] [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
FLWR=${1:-.build/release/flwr}; SECONDS_PER=${2:-2}
python3 -c "import torch" 2>/dev/null || pip install --quiet torch==2.13.0+cpu
# OpenBLAS variables of these machines pick an older kernel in numpy/torch (FACTS.md): unset here only.
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
for model in cnn4 lenet5 mlp resnet8; do
  for input in 1x28x28 3x32x32; do
    "$FLWR" bench train --only train --model "$model" --input "$input" --threads 1,2 --seconds "$SECONDS_PER" \
      | grep '"batch":32' | sed "s/{\"bench\":\"train\"/{\"bench\":\"train\",\"impl\":\"flwr\",\"model\":\"$model\"/"
    python3 Benchmarks/pytorch_train.py --model "$model" --flwr "$FLWR" --input "$input" --threads 1,2 \
      --seconds "$SECONDS_PER" | grep '"batch": 32'
  done
done
