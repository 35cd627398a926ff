#!/usr/bin/env bash
# Every `ellm bench` figure that the issues set a target for, in one run, as JSON lines:
#   scripts/bench.sh [OUT.jsonl]          (default runs/bench/bench.jsonl)
# Run it on a quiet machine: the figures are compared with ../shared/PEERS.md, which was
# measured with 2 threads on this machine kind. The teacher figure needs a teacher model: it
# uses runs/demo/finetune/cot/final when the demo has run (skipped otherwise).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/bench/bench.jsonl}
ELLM=${ELLM:-build/ellm}
[ -x "$ELLM" ] || scripts/build.sh
mkdir -p "$(dirname "$OUT")"
: > "$OUT.tmp"
step() { echo "bench: $*" >&2; "$ELLM" --log-level warn bench "$@" | tee -a "$OUT.tmp"; }
step gemm
step tokenize
step forward --model qwen2-tiny,qwen2-0.5b --dtype fp32,bf16
step generate --model qwen2-tiny,qwen2-0.5b --dtype fp32,bf16 --batch 1,8
step train-decoder --model qwen2-tiny --dtype fp32,bf16
echo "bench: launch -n 2 -- train-decoder --scaling" >&2
"$ELLM" --log-level warn launch -n 2 -- --log-level warn --threads 1 bench train-decoder --model qwen2-tiny --dtype fp32 \
  --seconds 10 --scaling | tee -a "$OUT.tmp"
step student
if [ -d runs/demo/finetune/cot/final ]; then
  step teacher --model runs/demo/finetune/cot/final --batch 1,16
fi
mv "$OUT.tmp" "$OUT"
echo "bench: wrote $OUT" >&2
