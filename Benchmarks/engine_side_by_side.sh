#!/bin/bash
# Same-session training figures for BENCHMARKS.md "Training engine": for each of 3 runs, an older
# flwr binary (optional), this tree's binary, then PyTorch, back to back, with the load noted.
#   swift build -c release --product flwr
#   Benchmarks/engine_side_by_side.sh [path/to/older/flwr]
set -u
NEW=.build/release/flwr
OLD=${1:-}
for rep in 1 2 3; do
  echo "### run $rep $(date -u +%H:%M:%S) $(uptime | sed 's/.*load/load/')"
  top -bn1 | sed -n 8,10p
  if [ -n "$OLD" ]; then echo "## before ($OLD)"; "$OLD" bench train --only train --seconds 2 | grep '"batch":32'; fi
  echo "## after"; "$NEW" bench train --only train --quick --threads 1,2 --seconds 2
  echo "## pytorch"
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python3 Benchmarks/pytorch_train.py --quick --threads 1,2 --seconds 2
done
