#!/bin/bash
# Record-level DP-SGD, flwr against Opacus 1.6 (BENCHMARKS.md "Record-level DP-SGD"), in one run:
# the reference CNN on the first N Fashion-MNIST training images, E epochs, expected batch B,
# clip C, lr, momentum, 2 threads; for each target ε Opacus's get_noise_multiplier gives σ and
# both train with that σ at the same Poisson rate. Plain (non-DP) epochs of both for the ratios.
#   pip install torch==2.13.0+cpu opacus==1.6.0; swift build -c release --product flwr
#   Benchmarks/dp_sgd_vs_opacus.sh [N] [E]
set -eu
N=${1:-10000} E=${2:-3} B=256 C=1.0 LR=0.1 M=0.9
FLWR=${FLWR:-.build/release/flwr}
out=$(mktemp -d)
echo "### $(date -u +%H:%M:%S) $(uptime | sed 's/.*load/load/'); $(grep -o 'avx512f' /proc/cpuinfo | head -1 || echo no-avx512)"
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python3 Benchmarks/opacus_train.py --train "$N" --epochs "$E" --batch "$B" \
  --clip "$C" --lr "$LR" --momentum "$M" --threads 2 --plain | tee "$out/opacus.jsonl"
q=$(python3 -c "print(1 / -(-$N // $B))")
"$FLWR" train --max-train-examples "$N" --epochs "$E" --batch-size "$B" --lr "$LR" --momentum "$M" --threads 2 \
  --metrics-out "$out/plain.jsonl" > /dev/null 2>&1
python3 -c "import json,sys; r=[json.loads(l) for l in open('$out/plain.jsonl')]; print(json.dumps({'impl':'flwr','dp':False,'accuracy':r[-1]['accuracy'],'images_per_s':round(sum(x['images_per_s'] for x in r)/len(r),1),'seconds':round(sum(x['seconds'] for x in r),1)}))"
grep '"opacus"' "$out/opacus.jsonl" | python3 -c "import json,sys; [print(json.loads(l)['sigma'], json.loads(l)['target_epsilon']) for l in sys.stdin]" |
while read -r sigma target; do
  "$FLWR" train --max-train-examples "$N" --epochs "$E" --batch-size "$B" --lr "$LR" --momentum "$M" --threads 2 \
    --dp-sgd --noise-multiplier "$sigma" --max-grad-norm "$C" --sampling-rate "$q" --metrics-out "$out/dp.jsonl" > /dev/null 2>&1
  python3 -c "import json; r=[json.loads(l) for l in open('$out/dp.jsonl')]; print(json.dumps({'impl':'flwr','dp':True,'target_epsilon':$target,'sigma':$sigma,'epsilon':r[-1]['epsilon'],'accuracy':r[-1]['accuracy'],'images_per_s':round(sum(x['images_per_s'] for x in r)/len(r),1),'seconds':round(sum(x['seconds'] for x in r),1)}))"
done
rm -rf "$out"
