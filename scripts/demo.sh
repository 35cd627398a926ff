#!/usr/bin/env bash
# The README's first command: installs what is missing, builds, and runs the whole
# ellm pipeline on the shipped synthetic sample (data/demo/), printing the final table:
#   annotate (attribute annotator) → tokenizers → fine-tune the tiny teacher (CoT and
#   no-CoT, plus out-of-fold teachers) → teacher targets → distill both students
#   (CE-only, MKD, and the rule-BIO control) → eval (with the lexical-overlap rule).
# Everything goes under runs/demo/ (git-ignored), one directory per stage; open any
# artifact with `build/ellm inspect PATH`. A second run skips the stages that finished.
#   scripts/demo.sh [--out DIR] [extra scripts/reproduce_tables.sh flags]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=runs/demo
if [ "${1:-}" = --out ]; then OUT=$2; shift 2; fi

scripts/setup.sh
scripts/build.sh

# Canonical pairs carry their split: one file per split, beside the grade scale.
data=$OUT/data-in
mkdir -p "$data"
for split in train dev test; do
  grep "\"split\":\"$split\"" data/demo/pairs.jsonl > "$data/$split.pairs.jsonl.tmp"
  mv "$data/$split.pairs.jsonl.tmp" "$data/$split.pairs.jsonl"
done
cp data/demo/dataset.json "$data/dataset.json"

start=$(date +%s)
scripts/reproduce_tables.sh --data "$data" --test "$data/test.pairs.jsonl" --out "$OUT" \
  --config configs/reproduce/demo.env "$@"
echo "demo: finished in $(( $(date +%s) - start )) s; artifacts under $OUT/"
