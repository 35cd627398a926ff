#!/usr/bin/env bash
# ellm against the PEERS.md workloads in PyTorch eager, side by side on this machine:
#   scripts/bench_peers.sh [OUT_DIR]       (default runs/bench/peers; ROUNDS=3, SECONDS_PER_CASE=3)
#   CASES='student --dtype fp32;gemm' scripts/bench_peers.sh OUT_DIR   (only these cases, ';'-separated)
# ../shared/PEERS.md was measured on another CPU (Sapphire Rapids with AMX), so its figures are
# not this machine's. scripts/peers/eager_reference.py runs the same workloads as transformers
# computes them, with Debian's python3-torch (the PyTorch 1.13.1 that ellm links, installed
# here if missing). Each round runs every case with ellm and with the reference back to back,
# alternating which goes first, so that both see the same minute of a shared machine; the
# table (scripts/peers/compare.py) gives each side's median over rounds and the range of the
# per-round ratios. Writes OUT_DIR/round-N.{ellm,reference}.jsonl and OUT_DIR/summary.md.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/bench/peers}
ROUNDS=${ROUNDS:-3}
SECONDS_PER_CASE=${SECONDS_PER_CASE:-3}
ELLM=${ELLM:-build/ellm}
PY=/usr/bin/python3
[ -x "$ELLM" ] || scripts/build.sh
if ! "$PY" -c 'import torch' 2>/dev/null; then
  echo "bench_peers: installing python3-torch (Debian's PyTorch 1.13.1, the reference)" >&2
  if [ "$(id -u)" = 0 ]; then apt-get install -y python3-torch >&2; else sudo apt-get install -y python3-torch >&2; fi
fi
mkdir -p "$OUT"
rm -f "$OUT"/round-*.jsonl

# One case: the `ellm bench` subcommand and its arguments; the reference takes the same ones.
ALL_CASES=(
  "gemm"
  "forward --model qwen2-tiny,qwen2-0.5b --dtype fp32,bf16"
  "generate --model qwen2-tiny --dtype fp32,bf16 --batch 1,8"
  "generate --model qwen2-0.5b --dtype fp32,bf16 --batch 1,8"
  "train-decoder --model qwen2-tiny --dtype fp32,bf16"
  "student --dtype fp32,bf16"
)
if [ -n "${CASES:-}" ]; then IFS=';' read -ra CASES <<< "$CASES"; else CASES=("${ALL_CASES[@]}"); fi
ellm_case() { "$ELLM" --log-level warn bench "$@" --seconds "$SECONDS_PER_CASE" >> "$OUT/round-$r.ellm.jsonl"; }
reference_case() { "$PY" scripts/peers/eager_reference.py "$@" --seconds "$SECONDS_PER_CASE" >> "$OUT/round-$r.reference.jsonl"; }
for r in $(seq 1 "$ROUNDS"); do
  for c in "${CASES[@]}"; do
    echo "bench_peers: round $r/$ROUNDS: $c" >&2
    # shellcheck disable=SC2086  # a case is a word list
    if (( r % 2 )); then ellm_case $c; reference_case $c; else reference_case $c; ellm_case $c; fi
  done
done
"$PY" scripts/peers/compare.py "$OUT" | tee "$OUT/summary.md.tmp"
mv "$OUT/summary.md.tmp" "$OUT/summary.md"
echo "bench_peers: wrote $OUT/summary.md" >&2
